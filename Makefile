# Two entry points for a fresh machine: `make demo` (main job) and `make test` (the test suite).
# Both create .venv and install the pinned versions from constraints.txt first (CPU torch).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all lint
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/videochat inspect examples/bouncing.mp4
	$(VENV)/bin/videochat ask examples/bouncing.mp4 "What colour is the circle?" --greedy

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
