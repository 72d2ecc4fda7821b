# driftwarden developer entry points. `make test` is the one command CI runs (.ci/run).
SHELL := /bin/bash
comma := ,
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest control-plane kwok helm registry jaeger opa system-tools bench bench-instructions venv constraints clean help

help:
	@echo "make test           venv + control plane and kwok (built from source if not cached) + ruff + mypy + pytest"
	@echo "make demo           venv + local cluster + Jaeger, then driftwarden demo: the whole story, each step checked"
	@echo "make control-plane  build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl"
	@echo "                    into ~/.cache/driftwarden"
	@echo "make kwok           build the pinned kwok (fake Nodes for the local cluster) into ~/.cache/driftwarden"
	@echo "make helm           build the pinned helm (renders Helm sources) into ~/.cache/driftwarden"
	@echo "make jaeger         build the pinned Jaeger v2 (tracing end-to-end tests) into ~/.cache/driftwarden"
	@echo "make registry       build the pinned OCI registry (tests of Helm charts from oci://) into ~/.cache/driftwarden"
	@echo "make bench          admission CPU per review vs a bare handler and OPA, tracing off vs on, CLI start-up;"
	@echo "                    writes docs/benchmarks.md and benchmarks/results/ (BASELINE=main adds a before)"
	@echo "make opa            build the pinned OPA (benchmarks and their smoke test) into ~/.cache/driftwarden"
	@echo "make bench-instructions  instructions per review (valgrind callgrind): tracing, event loops, bare handler"
	@echo "make lint           ruff check, ruff format --check, import-linter layer contracts"
	@echo "make typecheck      mypy --strict on the packages"
	@echo "make pytest         the test suite only"
	@echo "make constraints    re-pin requirements/constraints.txt from the current venv"

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml requirements/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "driftwarden needs Python 3.11 or newer; set PYTHON=python3.11")'
	@command -v git >/dev/null || { echo "error: git is needed (tests make real repositories)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]'
	@touch $@

control-plane:
	@tools/build-control-plane.sh

kwok:
	@tools/build-kwok.sh

helm:
	@tools/build-helm.sh

registry:
	@tools/build-registry.sh

jaeger:
	@tools/build-jaeger.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

# Programs the tests run besides the project's own: curl (tests/e2e/test_metrics_curl.py).
system-tools:
	@command -v curl >/dev/null || { echo "curl is missing: installing it from Debian"; \
		apt-get update -qq && apt-get install -y -qq curl; }

pytest: venv control-plane kwok helm registry jaeger opa system-tools
	$(BIN)/pytest -q

test: venv control-plane kwok lint typecheck pytest

demo: venv control-plane kwok jaeger
	$(BIN)/driftwarden demo

opa:
	@tools/build-opa.sh

# BASELINE=<git ref> adds that commit's webhook to the admission rounds (a before and after in one run).
BASELINE ?=
# Managed objects of the auditor's benchmarks, one fleet per size (issue 17); smaller sizes for a quick run.
BENCH_AUDIT_OBJECTS ?= 1000,5000
BENCH_HEAL_OBJECTS ?= 1000,5000
BENCH_MEMORY_OBJECTS ?= 1000,10000
BASELINE_DIR := $(or $(TMPDIR),/tmp)/driftwarden-bench-baseline
bench: venv control-plane jaeger opa
	@mkdir -p benchmarks/results
	@rm -rf $(BASELINE_DIR)
	@if [ -n "$(BASELINE)" ]; then mkdir $(BASELINE_DIR) && git archive "$(BASELINE)" | tar -x -C $(BASELINE_DIR); fi
	$(BIN)/python -m benchmarks.admission_load --pin --connections 16 --duration 10 --rounds 4 \
		--modes $(if $(BASELINE),base$(comma))off,off-aio,on,bare,bare-uv,opa $(if $(BASELINE),--baseline $(BASELINE_DIR)) \
		--json benchmarks/results/admission.json
	@rm -rf $(BASELINE_DIR)
	$(BIN)/python -m benchmarks.admission_load --pin --connections 16 --duration 10 --rounds 2 --rate 1000 \
		--modes off,bare --json benchmarks/results/admission-rate.json
	$(BIN)/python -m benchmarks.apiserver_patch --json benchmarks/results/apiserver_patch.json
	$(BIN)/python -m benchmarks.cli_startup --json benchmarks/results/cli_startup.json
	$(BIN)/python -m benchmarks.decision_time --json benchmarks/results/decision_time.json
	$(BIN)/python -m benchmarks.full_audit --objects $(BENCH_AUDIT_OBJECTS) --json benchmarks/results/full_audit.json
	$(BIN)/python -m benchmarks.heal_latency --objects $(BENCH_HEAL_OBJECTS) --json benchmarks/results/heal.json
	$(BIN)/python -m benchmarks.auditor_memory --objects $(BENCH_MEMORY_OBJECTS) --json benchmarks/results/memory.json
	$(BIN)/python -m benchmarks.report

bench-instructions: venv jaeger
	@command -v valgrind >/dev/null || { echo "error: valgrind is needed (apt-get install -y valgrind)"; exit 2; }
	@mkdir -p benchmarks/results
	$(BIN)/python -m benchmarks.admission_instructions --requests 100 --warmup 30 \
		--json benchmarks/results/admission_instructions.json
	$(BIN)/python -m benchmarks.report

constraints: venv
	@{ echo "# Pinned versions of every Python package driftwarden and its dev tools install (pip constraints)."; \
	   echo "# Regenerate with: make constraints"; \
	   $(BIN)/pip freeze --exclude-editable; } > requirements/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
