# Each target does its own set-up on a fresh machine: a virtual environment with the CPU build of torch
# installed first (an open torch range installed first would pull a multi-GB CUDA build), then parp.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.parp-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q torch==2.13.0
	$(VENV)/bin/python -m pip install -q -e '.[test,hf]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/parp demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider --durations=15

bench: $(STAMP)
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs
