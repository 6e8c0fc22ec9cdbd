# Portable: GNU make and BSD make. Every target creates .venv itself.
PYTHON ?= python3
VENV = .venv
BIN = $(VENV)/bin

.PHONY: up down status test interop bench clean

up: $(VENV)/.base
	$(BIN)/hearth up

down:
	@if [ -x $(BIN)/hearth ]; then $(BIN)/hearth down; else echo "hearth is not installed: nothing to stop"; fi

status: $(VENV)/.base
	$(BIN)/hearth status

test: $(VENV)/.test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Third-party clients against real daemons (litmus, rclone, a running sync client); not part of `make test`.
# Then the sync, WebDAV and share-link clients again with every chunk in a real SeaweedFS ([storage] blobs = "s3").
interop: $(VENV)/.test
	RUN_INTEROP=1 $(BIN)/python -m pytest tests/interop $(PYTEST_ARGS)
	RUN_INTEROP=1 HEARTH_TEST_BLOBS=s3 $(BIN)/python -m pytest tests/interop/test_files_interop.py \
		tests/interop/test_nextcloudcmd_sync_interop.py tests/test_share_links.py $(PYTEST_ARGS)

bench: $(VENV)/.bench
	$(BIN)/python -m pytest -p no:cacheprovider -s tests/bench $(PYTEST_ARGS)

$(VENV)/.python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $(VENV)/.python

$(VENV)/.base: $(VENV)/.python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(VENV)/.base

$(VENV)/.test: $(VENV)/.python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.base $(VENV)/.test

$(VENV)/.bench: $(VENV)/.python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(VENV)/.base $(VENV)/.test $(VENV)/.bench

clean:
	rm -rf $(VENV) var
