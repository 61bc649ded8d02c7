# The two commands of the README:
#   make book   build the book (every chapter executed, warnings are errors)
#   make test   unit tests, then the clean book build, the student edition and both editions
#               read in headless Chromium (pinned versions), then with Colab's versions and
#               Python 3.12: the unit tests, and every chapter executed (tools/run_chapters.py).
#               The fresh_key tests take a seed hashed from each test's id: the same verdict
#               on the same commit, every time.
#   make soak   the statistical tests (those that use fresh_key) on fresh OS-random seeds,
#               SOAK_REPEAT times each; prints each failing seed with the line that replays it
# one for the speed benchmarks (book/implementation.md):
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
# Colab's Python (3.12): pyenv's, python3.12 on PATH or ~/.pyenv/versions/3.12*; else $(PYTHON)
# with a notice. Looked up only when .venv-colab is (re)built.
COLAB_PYTHON ?= $(shell $(PYTHON) tools/colab_python.py 3.12)
# make soak: runs of each statistical test. Each repeat after the first costs about a quarter of
# the first (the kernels are compiled by then): 5 take roughly 10-15 min on a 2-core CPU.
SOAK_REPEAT ?= 5
BENCH_VENV := .venv-bench
PIP_FLAGS := -q --disable-pip-version-check
STUDENT_BRANCH ?= student
STUDENT_REPO ?=
export MINI_ADV_STATIC := 1

# The unit tests run on TEST_WORKERS processes (pytest-xdist): XLA compiles on one core, so two
# workers keep both cores busy. The verdict does not depend on the order: each statistical
# test's seed is a hash of its id, and no test depends on another's state.
TEST_WORKERS ?= 2
UNIT := -m "not book and not browser" -n $(TEST_WORKERS)
# The unit tests of the Colab pass: every test but the statistical ones (marker stats, the
# fresh_key tests), which the pinned pass runs; under Colab's versions the chapters then run the
# same experiments. This keeps make test under 35 minutes on 2 cores (the whole suite under
# Colab's versions took 738 s, against 595 s pinned). COLAB_UNIT='$(UNIT)' runs all of it.
COLAB_UNIT ?= -m "not book and not browser and not stats" -n $(TEST_WORKERS)
TEST_START := $(shell date +%s)
# $(call timed,label,command): run the command, then print how long it took (commas: none in either)
timed = t0=$$(date +%s); $(2); rc=$$?; echo "== $(1): $$(( $$(date +%s) - t0 )) s (exit $$rc)"; exit $$rc

.PHONY: book test soak student bench chromium colab-cells colab-package clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements.txt
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

# Colab's stack only; the package goes in at every make test (colab-package)
$(COLAB_VENV)/.installed: tests/requirements-colab.txt tools/colab_python.py
	rm -rf $(COLAB_VENV)
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) -r tests/requirements-colab.txt
	touch $@

# The package as Colab's install cell installs it: a regular (not editable) install of this
# tree, its dependencies resolved against what is installed; then no pin may have moved
# (run_chapters.py --requirements), nor a module be missing from the install (run_chapters.py
# checks both before the chapters), and pip check must be clean. build/ is setuptools' scratch
# folder: removed before, so that no stale module of an earlier build reaches the wheel.
colab-package: $(COLAB_VENV)/.installed
	rm -rf build
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) .
	rm -rf build
	$(COLAB_VENV)/bin/python -m pip check

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

# The unit tests run without JAX's persistent compilation cache (MINI_ADV_JAX_CACHE=off), so
# that none depends on what an earlier run left; the book build (tests/conftest.py) and the
# chapter runner use an empty temporary cache each.
test: $(VENV)/.installed colab-package chromium
	@echo "== unit tests (pinned versions: requirements.txt)"
	@$(call timed,unit tests (pinned versions),MINI_ADV_JAX_CACHE=off $(VENV)/bin/python -m pytest -ra $(UNIT))
	@echo "== the clean -W book build, the student edition and the browser test (pinned versions)"
	@$(call timed,book build + student edition + browser test,$(VENV)/bin/python -m pytest -ra -m "book or browser")
	@echo "== unit tests again with Colab's versions ($$($(COLAB_VENV)/bin/python -V); tests/requirements-colab.txt)"
	@$(call timed,unit tests (Colab's versions),MINI_ADV_JAX_CACHE=off $(COLAB_VENV)/bin/python -m pytest -ra $(COLAB_UNIT))
	@echo "== every chapter executed with Colab's versions (tools/run_chapters.py)"
	@$(call timed,chapters (Colab's versions),$(COLAB_VENV)/bin/python tools/run_chapters.py --requirements tests/requirements-colab.txt --jobs $(TEST_WORKERS))
	@echo "== make test passed in $$(( $$(date +%s) - $(TEST_START) )) s"

# Fresh OS-random seeds for every test that uses fresh_key (marker "stats"), SOAK_REPEAT
# different seeds each. A failure prints its seed and the command that replays it; a seed that
# fails here becomes a fixed regression test (jax.random.key(<seed>)) once its cause is fixed.
soak: $(VENV)/.installed
	@echo "== statistical tests on fresh random seeds, $(SOAK_REPEAT) each (MINI_ADV_SEED=random MINI_ADV_REPEAT=$(SOAK_REPEAT))"
	@$(call timed,soak,MINI_ADV_JAX_CACHE=off MINI_ADV_SEED=random MINI_ADV_REPEAT=$(SOAK_REPEAT) $(VENV)/bin/python -m pytest -ra -m "stats and not book and not browser" -n $(TEST_WORKERS))

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/run.py --config reference --out benchmarks/results/$$(date +%F).json

colab-cells: $(VENV)/.installed
	$(VENV)/bin/python tools/sync_colab.py

clean:
	rm -rf _build build $(VENV) $(COLAB_VENV) $(BENCH_VENV) *.egg-info
