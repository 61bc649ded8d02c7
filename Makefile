# The two commands of the README:
#   make book   build the book (every chapter executed, warnings are errors)
#   make test   unit tests + clean book build (pinned versions), then unit tests with Colab's versions
# Each creates the virtual environment it needs on first use.

PYTHON ?= python3
VENV := .venv
COLAB_VENV := .venv-colab
PIP_FLAGS := -q --disable-pip-version-check
export MINI_ADV_STATIC := 1

.PHONY: book test colab-cells clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements.txt
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

$(COLAB_VENV)/.installed: tests/requirements-colab.txt pyproject.toml
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) -r tests/requirements-colab.txt
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

book: $(VENV)/.installed
	$(VENV)/bin/jupyter-book clean --all .
	$(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: $(VENV)/.installed $(COLAB_VENV)/.installed
	@echo "== unit tests and the clean -W book build (pinned versions: requirements.txt)"
	$(VENV)/bin/python -m pytest -ra
	@echo "== unit tests again with Colab's versions (tests/requirements-colab.txt)"
	$(COLAB_VENV)/bin/python -m pytest -ra -m "not book"

colab-cells: $(VENV)/.installed
	$(VENV)/bin/python tools/sync_colab.py

clean:
	rm -rf _build $(VENV) $(COLAB_VENV) *.egg-info
