# The GlitchTip kit. `make help` lists the targets; each sets up .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROVISION := $(BIN)/provision

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): the kit, Compose v2 and the test tools (first use only)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

.PHONY: help
help: ## Show this help: every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the kit and its dev tools

.PHONY: init
init: $(STAMP) ## Write glitchtip.yaml and generate the secrets in .env (keeps existing ones)
	@$(PROVISION) init

.PHONY: render
render: $(STAMP) ## Render the compose files, monitoring/ and .env, validated by docker compose
	@$(PROVISION) render --check

.PHONY: start
start: $(STAMP) ## Render, start, migrate, create the admin and the default project; print the DSN
	@$(PROVISION) up

.PHONY: stop
stop: $(STAMP) ## Stop the stack (volumes and data kept)
	@$(PROVISION) down

.PHONY: restart
restart: $(STAMP) ## Stop, then start again
	@$(PROVISION) down
	@$(PROVISION) up

.PHONY: status
status: $(STAMP) ## Show each container's state and GlitchTip's health
	@$(PROVISION) status

.PHONY: logs
logs: $(STAMP) ## Follow the logs of every service (SERVICE=web for one)
	@$(PROVISION) logs --follow $(SERVICE)

.PHONY: migrate
migrate: $(STAMP) ## Run GlitchTip's migrations (./bin/run-migrate.sh) again
	@$(PROVISION) migrate

.PHONY: verify
verify: $(STAMP) ## Check the deployment end to end: URL, health, token, services, disk, an event
	@$(PROVISION) verify

.PHONY: upgrade
upgrade: $(STAMP) ## Upgrade GlitchTip (TO=6.2.7 or an image; POSTGRES=18.1): backup, rollback on failure
	@$(PROVISION) upgrade $(if $(TO),--to $(TO)) $(if $(POSTGRES),--postgres $(POSTGRES))

.PHONY: backup
backup: $(STAMP) ## Back up database, uploads and files to backups/ (KEEP=N prunes older ones)
	@$(PROVISION) backup $(if $(KEEP),--keep $(KEEP))

.PHONY: partman-start
partman-start: $(STAMP) ## GlitchTip 5 only: start with pg_partman advanced partitioning
	@$(PROVISION) up --partman

.PHONY: locust-start
locust-start: $(STAMP) ## Locust's web UI on 127.0.0.1:8089 with SDK traffic against the running stack
	@$(PROVISION) load --ui

.PHONY: locust-stop
locust-stop: $(STAMP) ## Stop the Locust web UI and its workers
	@$(PROVISION) load --stop

.PHONY: metrics-start
metrics-start: $(STAMP) ## Add Prometheus, Grafana and the exporters (remembered; a second run changes nothing)
	@$(PROVISION) up --metrics

.PHONY: metrics-stop
metrics-stop: $(STAMP) ## Remove only the metrics services (GlitchTip and all data kept) and record metrics off
	@$(PROVISION) down --only-metrics

.PHONY: clean
clean: $(STAMP) ## Remove the stack AND its volumes (asks first)
	@$(PROVISION) down --volumes

.PHONY: test
test: $(STAMP) ## Run the fast tests (no root, no Docker engine needed)
	@$(BIN)/pytest -q -m "not stack"

.PHONY: test-stack
test-stack: $(STAMP) ## Run the Docker tier: real engine, built images, provision up/down
	@$(BIN)/pytest -q -m stack

.PHONY: lint
lint: $(STAMP) ## ruff check and format check
	@$(BIN)/ruff check provision tests bench
	@$(BIN)/ruff format --check provision tests bench

.PHONY: mutation
mutation: $(STAMP) ## Mutation testing (mutmut, a seeded sample) of what decides a user's data and secrets: score >= 90%, survivors, run time
	@$(BIN)/python tests/mutation/run.py --fresh
	@$(BIN)/python tests/mutation/issue_mutants.py

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks under bench/ and print their figures
	@for b in bench/bench_*.py; do $(BIN)/python $$b; done
