# archlab — every target sets up the virtual environment on first use.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
SCALE   ?= quick
JOBS    ?= 2
ARCHLAB := $(BIN)/archlab

.PHONY: help venv test test-slow lint format flops bench recipes study-principles clean-venv

help:
	@echo "make test | test-slow | lint | flops | bench | recipes | study-<name> [SCALE=full] [JOBS=N]"

# The stamp depends on pyproject so a changed dependency list reinstalls.
$(VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU build lies on disk; a plain `torch` pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp

test: venv
	$(BIN)/pytest -q

test-slow: venv
	$(BIN)/pytest -q -m slow

lint: venv
	$(BIN)/ruff check archlab tests
	$(BIN)/ruff format --check archlab tests

format: venv
	$(BIN)/ruff format archlab tests
	$(BIN)/ruff check --fix archlab tests

flops: venv
	$(ARCHLAB) report-flops --out reports/flops

bench: venv
	$(ARCHLAB) bench --out reports/bench

# The quick and full training recipes over 3 seeds (stored runs are kept) -> reports/recipes/
recipes: venv
	$(ARCHLAB) recipes --jobs $(JOBS)

# Studies: `make study-factorization [SCALE=full] [JOBS=2]` runs studies/factorization.yaml
# (resuming where it stopped) and renders reports/factorization/.
PRINCIPLES := principle1-bottleneck principle2-highdim principle3-reduction principle4-balance

study-principles: venv
	for s in $(PRINCIPLES); do $(ARCHLAB) study run studies/$$s.yaml --scale $(SCALE) --jobs $(JOBS) || exit 1; done
	$(ARCHLAB) study report principles --scale $(SCALE)

study-%: venv studies/%.yaml
	$(ARCHLAB) study run studies/$*.yaml --scale $(SCALE) --jobs $(JOBS)

clean-venv:
	rm -rf $(VENV)
