# archlab — every target sets up the virtual environment on first use.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
SCALE   ?= quick
JOBS    ?= 2
BUDGET  ?= 20
# MAX_SEEDS: the most seeds --until-decided adds (default: the scale's max_seeds, else 10)
MAX_SEEDS ?=
UNTIL    = --until-decided --budget $(BUDGET) $(if $(MAX_SEEDS),--max-seeds $(MAX_SEEDS))
ARCHLAB := $(BIN)/archlab

.PHONY: help venv test test-slow test-slow-ci test-cuda lint format flops bench recipes reports study-principles clean-venv

help:
	@echo "make test | test-slow | test-slow-ci | test-cuda | lint | flops | bench | recipes | reports | study-<name> [SCALE=full] [JOBS=N] [BUDGET=MIN] [MAX_SEEDS=K]"

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
	$(BIN)/pytest -q -rs

test-slow: venv
	$(BIN)/pytest -q -rs -m slow

# the GPU path (tests/test_cuda.py): every variant's step on CUDA, CUDA runs, a study on the GPU
test-cuda: venv
	$(BIN)/pytest -q -rs -m cuda

# CI's slice of the slow tests (marked slow_ci; ~20 s on 2 busy cores), cut off after SLOW_CI_S
# so that a slice grown slow cannot stretch CI past its budget unnoticed
SLOW_CI_S ?= 120
test-slow-ci: venv
	timeout $(SLOW_CI_S) $(BIN)/pytest -q -rs -m 'slow and slow_ci' || { rc=$$?; \
	  if [ $$rc = 124 ]; then echo "make test-slow-ci: past $(SLOW_CI_S) s; unmark a slow_ci test"; fi; \
	  exit $$rc; }

# ruff, and the import-linter layers contract (imports only point down; see ARCHITECTURE.md)
lint: venv
	$(BIN)/ruff check archlab tests
	$(BIN)/ruff format --check archlab tests
	$(BIN)/lint-imports

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

# Re-render every report from stored results (no training): each study with a journal, the
# principles page, the recipes page, then reports/index.html + README.md and the claims scorecard.
STUDIES := $(basename $(notdir $(wildcard studies/*.yaml)))
reports: venv
	for s in $(STUDIES); do if [ -e results/$$s/journal.log ]; then $(ARCHLAB) study report $$s || exit 1; fi; done
	$(ARCHLAB) study report principles --scale $(SCALE)
	$(ARCHLAB) recipes --report-only --quiet
	$(ARCHLAB) report-index --readme README.md

# Studies: `make study-factorization [SCALE=full] [JOBS=2] [BUDGET=20] [MAX_SEEDS=K]` runs
# studies/factorization.yaml (resuming where it stopped) until its claims are decided: seeds are
# added round by round to the open comparisons, up to K seeds or BUDGET minutes per study, and
# reports/factorization/ is re-rendered after every round.
PRINCIPLES := principle1-bottleneck principle2-highdim principle3-reduction principle4-balance \
	principle4-literal

study-principles: venv
	for s in $(PRINCIPLES); do $(ARCHLAB) study run studies/$$s.yaml --scale $(SCALE) --jobs $(JOBS) $(UNTIL) || exit 1; done
	$(ARCHLAB) study report principles --scale $(SCALE)

# a search has no comparisons to add seeds to: it runs its trials (resuming), no --until-decided
study-search: venv studies/search.yaml
	$(ARCHLAB) study run studies/search.yaml --scale $(SCALE) --jobs $(JOBS)

study-%: venv studies/%.yaml
	$(ARCHLAB) study run studies/$*.yaml --scale $(SCALE) --jobs $(JOBS) $(UNTIL)

clean-venv:
	rm -rf $(VENV)
