# Steadyhand: two commands on a fresh machine with Python >= 3.12.
#   make run    set up .venv, migrate, seed the demo, serve http://127.0.0.1:5000 and run the scheduler
#   make test   set up .venv with the dev tools and run the whole suite

PYTHON ?= $(shell command -v python3.12 || command -v python3 || command -v python)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: run port-free test lint install install-dev browser clean vendor vendor-check

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Steadyhand needs Python >= 3.12, found " + sys.version.split()[0] + " at " + sys.executable)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

# A busy port is found first, in milliseconds, not by gunicorn after migrating and seeding (standard library only:
# it runs before the virtualenv exists).
port-free:
	@$(or $(PYTHON),python3) scripts/check_port.py $(HOST) $(PORT)

run: port-free install
	$(BIN)/flask --app wsgi bootstrap
	@echo "Serving Steadyhand on http://$(HOST):$(PORT); the scheduler runs the demo watches on the replay market"
	@echo "(one 1h candle every 10 s): watch the landing page, or run .venv/bin/flask --app wsgi watch list. Ctrl-C stops both."
	STEADYHAND_HOST=$(HOST) STEADYHAND_PORT=$(PORT) STEADYHAND_WORKERS=$(WORKERS) $(BIN)/honcho -f Procfile start

# Debian's Chromium drives the end-to-end tests; test tools cannot download browsers here.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed and this user cannot apt-get it: browser tests will be skipped"; fi; }

# The front-end libraries are committed under static/vendor/ (no CDN): `vendor` downloads the pinned versions from the
# npm registry and rewrites the manifest; `vendor-check` proves the committed files are the manifest's bytes.
vendor:
	$(or $(PYTHON),python3) scripts/vendor_assets.py

vendor-check:
	@$(or $(PYTHON),python3) scripts/vendor_assets.py --check

lint: install-dev vendor-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install-dev browser lint
	$(BIN)/python -m pytest -rs -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
