# The two commands of the README:
#   make book   build the book (every chapter executed, warnings are errors)
#   make test   unit tests + clean book build + both editions read in headless Chromium
#               (pinned versions), then unit tests with Colab's versions
# one for the speed benchmarks (book/performance.md):
#   make bench    the reference benchmark in its own environment (.venv-bench, the peers of
#                 benchmarks/requirements.txt); writes benchmarks/results/<date>.{json,md}
#                 and latest.{json,md}, which the Performance page includes
# and one for instructors:
#   make student  build the student edition (no solutions) into _build/student/html,
#                 reusing make book's execution cache; STUDENT_REPO / STUDENT_BRANCH say where
#                 it will be published (its Colab buttons point there; see book/instructor.md)
# Each creates the virtual environment it needs on first use.

PYTHON ?= python3
VENV := .venv
COLAB_VENV := .venv-colab
BENCH_VENV := .venv-bench
PIP_FLAGS := -q --disable-pip-version-check
STUDENT_BRANCH ?= student
STUDENT_REPO ?=
export MINI_ADV_STATIC := 1

.PHONY: book test student bench chromium colab-cells clean

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

# torchattacks without its dependencies: it would pull torchvision (see benchmarks/requirements.txt)
$(BENCH_VENV)/.installed: benchmarks/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) -r benchmarks/requirements.txt
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps torchattacks==3.5.1
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

book: $(VENV)/.installed
	$(VENV)/bin/jupyter-book clean --all .
	$(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

student: $(VENV)/.installed
	$(VENV)/bin/python tools/student_edition.py --branch $(STUDENT_BRANCH) $(if $(STUDENT_REPO),--repository-url $(STUDENT_REPO))

# The browser test drives Debian's chromium (never a browser downloaded by playwright), or
# the Chromium binary that MINI_ADV_CHROMIUM names.
chromium:
	@[ -n "$$MINI_ADV_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || { \
	  echo "== installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: $(VENV)/.installed $(COLAB_VENV)/.installed chromium
	@echo "== unit tests, the clean -W book build, the student edition and the browser test (pinned versions: requirements.txt)"
	$(VENV)/bin/python -m pytest -ra
	@echo "== unit tests again with Colab's versions (tests/requirements-colab.txt)"
	$(COLAB_VENV)/bin/python -m pytest -ra -m "not book and not browser"

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/run.py --config reference --out benchmarks/results/$$(date +%F).json

colab-cells: $(VENV)/.installed
	$(VENV)/bin/python tools/sync_colab.py

clean:
	rm -rf _build $(VENV) $(COLAB_VENV) $(BENCH_VENV) *.egg-info
