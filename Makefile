# Concierge — the commands people expect. `make run` and `make test` set everything up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
ENV ?= dev
CONCIERGE_PORT ?= 3000
export SAM_CLI_TELEMETRY := 0
# Playwright (the web page's browser tests) uses the system Chromium and never downloads one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: help install run index test lint format typecheck unit integration e2e infra validate build deploy web bench load eval eval-promptfoo lock openapi screen-model clean workflows

help:
	@echo "make run              local chat API and web page on http://127.0.0.1:$(CONCIERGE_PORT) (offline models)"
	@echo "make test             every test and static check"
	@echo "make lint|typecheck   ruff / mypy"
	@echo "make validate         sam validate --lint, cfn-lint, asl-validator, checkov"
	@echo "make build            sam build (arm64, no Docker)"
	@echo "make deploy ENV=dev   sam build + sam deploy --config-env ENV (dev|staging|prod; prod: + termination protection) + the web page"
	@echo "make web ENV=dev      upload the web page (web/, config.json) to a deployed stack, invalidate its CDN"
	@echo "make bench            benchmarks -> BENCHMARKS.md figures"
	@echo "make load             locust against a running make run (loopback, bounded)"
	@echo "make openapi          regenerate docs/openapi.json from the api function's routes"
	@echo "make screen-model     retrain the injection screen's weights on bench/safety/"

# --- environments -------------------------------------------------------------------------
$(BIN)/concierge: pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/concierge

$(SAM): requirements/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements/sam.txt
	touch $@

.venv-sam: $(SAM)

# checkov pins many packages of its own: a third environment, built once (the target's timestamp).
$(CHECKOV): requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements/checkov.txt
	touch $@

.venv-checkov: $(CHECKOV)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# --- local run ----------------------------------------------------------------------------
index: install
	$(BIN)/concierge ingest

run: index
	CONCIERGE_PORT=$(CONCIERGE_PORT) $(BIN)/concierge serve

# --- checks -------------------------------------------------------------------------------
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m unit

integration: install
	$(BIN)/pytest -m integration

e2e: install
	$(BIN)/pytest -m e2e

infra: install $(SAM) $(CHECKOV) node_modules/.package-lock.json
	$(BIN)/pytest -m infra

test: install $(SAM) $(CHECKOV) node_modules/.package-lock.json lint typecheck workflows
	$(BIN)/pytest

validate: install $(SAM) $(CHECKOV) node_modules/.package-lock.json workflows
	$(SAM) validate --lint
	$(BIN)/cfn-lint template.yaml
	for definition in statemachine/*.asl.json; do node_modules/.bin/asl-validator --json-path $$definition || exit 1; done
	$(BIN)/pytest -q tests/infra/test_checkov.py

# The GitHub Actions workflows (.github/workflows), with actionlint and ShellCheck from
# requirements/dev.txt: the same checks offline, here and in CI.
workflows: install
	$(BIN)/actionlint -shellcheck=$(BIN)/shellcheck -pyflakes= .github/workflows/*.yml

# --- AWS ----------------------------------------------------------------------------------
build: $(SAM)
	$(SAM) build

deploy: build install
	@case "$(ENV)" in dev|staging|prod) ;; *) echo "ENV must be dev, staging or prod (got '$(ENV)')"; exit 2;; esac
	$(SAM) deploy --config-env $(ENV)
	$(if $(filter prod,$(ENV)),$(SAM_VENV)/bin/python cli/concierge_cli/termination.py $(ENV))
	$(BIN)/python -m concierge_cli.web_publish --env $(ENV)

# The web chat page alone (web/ + config.json from the stack's outputs, then a CloudFront
# invalidation), to a stack deployed before: `make web ENV=dev`.
web: install
	@case "$(ENV)" in dev|staging|prod) ;; *) echo "ENV must be dev, staging or prod (got '$(ENV)')"; exit 2;; esac
	$(BIN)/python -m concierge_cli.web_publish --env $(ENV)

# --- answer quality -------------------------------------------------------------------------
# `make eval`: every case of eval/cases, the variants of eval/config.toml, the chain in this
# process with the offline models. `make eval ENV=staging [JUDGE=bedrock:<model>]`: the deployed
# stack of that environment (its ApiUrl output; an admin's token in CONCIERGE_EVAL_TOKEN).
# Exits non-zero under the thresholds. The offline gate subset runs inside `make test`.
eval: install
ifeq ($(origin ENV),command line)
	$(BIN)/concierge eval --env $(ENV) $(if $(JUDGE),--judge $(JUDGE))
else
	$(BIN)/concierge eval $(if $(JUDGE),--judge $(JUDGE))
endif

# The same cases through promptfoo (eval/promptfooconfig.yaml) against `concierge serve`, and its
# viewer: `make eval-promptfoo`, then `eval/node_modules/.bin/promptfoo view`.
eval/node_modules/.package-lock.json: eval/package.json eval/package-lock.json
	cd eval && npm ci --no-audit --no-fund --loglevel=error
	touch $@

eval-promptfoo: install eval/node_modules/.package-lock.json
	$(BIN)/python -m concierge_cli.evaluation.promptfoo

# --- benchmarks (never part of `make test`) ------------------------------------------------
bench: install $(SAM)
	$(BIN)/python -m bench.run

# Load on a running `make run` (auth off) with bench/locustfile.py: LOAD_USERS users asking the
# sample's questions in sessions, for 30 s or 300 requests, whichever comes first, on loopback
# only. The figures at 1, 5 and 20 users with the history checked afterwards: `make bench`
# (--only load), BENCHMARKS.md "Load". CACHE=off sends bypass_cache with every question.
LOAD_USERS ?= 5
CACHE ?= on
load: install
	$(BIN)/locust -f bench/locustfile.py --headless --host http://127.0.0.1:$(CONCIERGE_PORT) \
	  --users $(LOAD_USERS) --spawn-rate $(LOAD_USERS) --run-time 30s --max-requests 300 \
	  --stop-timeout 10 --cache $(CACHE) --only-summary

lock: install
	{ echo "# Pinned development environment (.venv): the package's runtime, local and dev extras."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable; } > requirements/dev.txt

# The injection screen's learned weights, from the development sets in bench/safety/
# (a unit test fails when they are older than the sets or the screen's code).
screen-model: install
	$(BIN)/python -m concierge_cli.screen_model

# The HTTP API's OpenAPI document, generated from concierge.api (a unit test compares them).
openapi: install
	$(BIN)/python -m concierge_cli.openapi docs/openapi.json

clean:
	rm -rf .aws-sam .concierge .pytest_cache .mypy_cache .ruff_cache .hypothesis
