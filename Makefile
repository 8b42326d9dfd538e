# bgtool: `make demo` runs the demo on the embedded AWS, `make test` runs the test suite.
# Every target installs what it needs into .venv first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
BGTOOL := $(BIN)/bgtool
ENV    ?= local
PORT   ?= 5000

# Provider installation from a local mirror when the machine has one (air-gapped runners).
BGTOOL_PROVIDER_MIRROR ?= $(shell scripts/find-provider-mirror)
export BGTOOL_PROVIDER_MIRROR

.PHONY: help venv demo test lint unit integration bench local-up local-down \
        render plan apply status clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[local,test]'
	touch $@

venv: $(VENV)/.installed ## create .venv and install bgtool with its local and test extras

demo: venv ## embedded AWS up, apply `local` (blue live, green idle), status
	$(BGTOOL) local up --port $(PORT)
	$(BGTOOL) apply local --yes
	$(BGTOOL) status local

test: venv lint ## lint, unit and integration tests (starts its own embedded AWS)
	$(BIN)/python -m pytest -ra

lint: venv ## ruff and terraform fmt
	$(BIN)/ruff check bgtool tests bench
	TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive modules

unit: venv ## fast tests without AWS
	$(BIN)/python -m pytest -ra -m 'not integration'

integration: venv ## tests against the embedded AWS with the real terraform binary
	$(BIN)/python -m pytest -ra -m integration

local-up: venv ## start the embedded AWS
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

clean: ## remove rendered layers (state is kept)
	rm -rf build
