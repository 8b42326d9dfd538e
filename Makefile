# bgtool: `make demo` runs the demo on the embedded AWS, `make test` runs the test suite.
# Every target installs what it needs into .venv first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
BGTOOL := $(BIN)/bgtool
ENV    ?= local
PORT   ?= 5000

# Providers: bgtool itself finds a local mirror when the machine has one (air-gapped runners), after
# BGTOOL_PROVIDER_MIRROR and the environment file's terraform.provider_mirror, so nothing is exported
# here that would outrank the file (bgtool.terraform.cliconfig; the tests ask it too).

.PHONY: help venv demo test check quick-lint lint unit integration bench local-up local-down \
        render plan apply status deploy verify switch rollback retire \
        history drift drift-all clean checkov haproxy chromium bench-dataplane lock

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Exactly the versions CI last passed with (constraints/*.txt): a new release of a dependency never
# turns a first `make test` red. `make lock` refreshes them within pyproject.toml's ranges.
CONSTRAINTS      := constraints/bgtool.txt
SCAN_CONSTRAINTS := constraints/scan.txt

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[local,test]'
	touch $@

venv: $(VENV)/.installed ## create .venv and install bgtool with its local and test extras

# checkov in a venv of its own: its tight boto3/botocore pins would otherwise hold bgtool's back.
CHECKOV_VENV ?= .venv-checkov
$(CHECKOV_VENV)/.installed: pyproject.toml $(SCAN_CONSTRAINTS)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -c $(SCAN_CONSTRAINTS) pip
	$(CHECKOV_VENV)/bin/pip install --quiet -c $(SCAN_CONSTRAINTS) '.[scan]'
	touch $@

lock: ## refresh constraints/*.txt: the newest releases pyproject.toml allows, then run `make test` before committing
	PYTHON=$(PYTHON) scripts/lock-constraints

VERSION      ?=
DEMO_VERSION ?= 1.1.0

haproxy: ## install HAProxy when missing (the embedded AWS's data plane)
	scripts/ensure-haproxy

chromium: ## install Chromium when missing (the report test opens `bgtool report`'s page in it)
	scripts/ensure-chromium

demo: venv haproxy ## embedded AWS up, apply `local`, deploy DEMO_VERSION to the idle color, verify, switch under traffic, status
	BGTOOL=$(BGTOOL) PYTHON_BIN=$(BIN)/python PORT=$(PORT) DEMO_VERSION=$(DEMO_VERSION) scripts/demo

# Integration modules spend most of their time waiting on the embedded AWS (load balancer creation,
# bakes), so they run a few at a time; each worker starts its own embedded AWS and data plane.
TEST_JOBS ?= 3

test: venv haproxy chromium quick-lint $(CHECKOV_VENV)/.installed ## lint, unit and integration tests (starts its own embedded AWS; checkov runs beside pytest)
	CHECKOV=$(CHECKOV_VENV)/bin/checkov BGTOOL=$(BGTOOL) PYTEST="$(BIN)/python -m pytest -ra -n $(TEST_JOBS) --dist loadfile" \
	  scripts/test-suite

lint: venv quick-lint ## ruff, the import contract, terraform fmt, actionlint and checkov
	$(MAKE) --no-print-directory checkov

quick-lint: venv ## ruff, the import contract, terraform fmt and actionlint (the linters that take seconds)
	$(BIN)/ruff check bgtool tests bench
	$(BIN)/lint-imports
	TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive modules
	$(BIN)/actionlint .github/workflows/*.yml

check: venv quick-lint ## the inner loop: quick linters and unit tests (no AWS, no checkov); `make test` is the full suite
	$(BIN)/python -m pytest -q -n 2 -m 'not integration'

checkov: venv $(CHECKOV_VENV)/.installed ## checkov over every rendered layer of every example environment (offline)
	CHECKOV=$(CHECKOV_VENV)/bin/checkov BGTOOL=$(BGTOOL) scripts/checkov-examples

unit: venv ## fast tests without AWS
	$(BIN)/python -m pytest -ra -m 'not integration'

integration: venv haproxy chromium ## tests against the embedded AWS with the real terraform binary
	$(BIN)/python -m pytest -ra -m integration

local-up: venv haproxy ## start the embedded AWS
	$(BGTOOL) local up --port $(PORT)

local-down: venv ## stop the embedded AWS
	$(BGTOOL) local down

render: venv ## render build/ENV
	$(BGTOOL) render $(ENV)

plan: venv ## plan ENV (exit 2 when changes are pending)
	$(BGTOOL) plan $(ENV)

apply: venv ## apply ENV
	$(BGTOOL) apply $(ENV)

status: venv ## status of ENV
	$(BGTOOL) status $(ENV)

deploy: venv ## deploy VERSION to the idle color of ENV
	@test -n "$(VERSION)" || { echo "usage: make deploy ENV=name VERSION=x.y.z" >&2; exit 3; }
	$(BGTOOL) deploy $(ENV) $(VERSION)

verify: venv ## health gate of the idle color of ENV
	$(BGTOOL) verify $(ENV)

# switch and rollback commit the environment file's one-line change (never pushed), so the
# repository keeps saying what production runs; `make switch COMMIT=` leaves it uncommitted.
COMMIT ?= --commit

switch: venv ## guarded switch of ENV to its idle color; commits the file change (COMMIT= to skip)
	$(BGTOOL) switch $(ENV) $(COMMIT)

rollback: venv ## traffic back to the previous color of ENV; commits the file change (COMMIT= to skip)
	$(BGTOOL) rollback $(ENV) $(COMMIT)

retire: venv ## scale the idle color of ENV to zero after its retention period
	$(BGTOOL) retire $(ENV)

history: venv ## release history of ENV
	$(BGTOOL) history $(ENV)

drift: venv ## drift check of ENV (exit 2 on drift)
	$(BGTOOL) drift $(ENV)

drift-all: venv ## drift check of every environment (exit 2 on drift)
	$(BGTOOL) drift --all

bench: venv haproxy ## every benchmark, each on its own embedded AWS: ratios measured side by side
	$(BIN)/python bench/switch.py
	$(BIN)/python bench/drift.py
	$(BIN)/python bench/dataplane.py
	$(BIN)/python bench/dns.py
	$(BIN)/python bench/zero_downtime.py
	$(BIN)/python bench/zero_downtime.py --compute ecs
	$(BIN)/python bench/terraform_runtime.py

bench-dataplane: venv haproxy ## local data plane: API change -> HAProxy delay, proxy-added latency
	$(BIN)/python bench/dataplane.py

clean: ## remove rendered layers (state is kept)
	rm -rf build
