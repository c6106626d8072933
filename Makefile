# One home for set-up: every target installs what it needs into .venv/ first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
DEMO_OUT ?= out/demo

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): setup.cfg constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/metaclip-spark curate --input tests/data/pool/sample_pairs.jsonl --input-format jsonl \
		--t auto --seed 0 --output $(DEMO_OUT) --overwrite

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out build dist *.egg-info
