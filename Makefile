# The shop's commands. `make demo` and `make test` are the two a newcomer needs (see README).
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
HOST        ?= 127.0.0.1
PORT        ?= 8000

# The real services used by `make test`, `make serve` and `make stress`.
PG_URL      ?= postgres://postgres@127.0.0.1:5432/shop
REDIS_BASE  ?= redis://127.0.0.1:6379
export PYTHONUNBUFFERED := 1

.PHONY: help venv dev demo test test-postgres test-sqlite contracts screenshots serve stop services browser migrate stress clean

help:
	@echo "make demo    - install, migrate, load demo data, serve http://$(HOST):$(PORT) (embedded: SQLite, no servers)"
	@echo "               DATA=rees46: real products and shoppers (REES46 sample) on var/demo-rees46.sqlite3"
	@echo "make test    - run the test suite against PostgreSQL and Redis (starts them if needed), then on SQLite"
	@echo "make contracts - the import contracts of .importlinter (also checked by tests/test_architecture.py)"
	@echo "make serve   - gunicorn + Celery worker + beat on PostgreSQL/Redis in the background (logs in var/log)"
	@echo "make stop    - stop what make serve started"
	@echo "make stress  - load + fault injection on the real stack; report in var/reports/"

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# The engine's native int8 kernel (recommendations/gru4rec/native): optional, so a machine without
# a C compiler still gets a working shop (torch's kernel or fp32 scoring, the same answers).
NATIVE      := recommendations/gru4rec/native/_i8gemv.so
$(NATIVE): recommendations/gru4rec/native/i8gemv.c recommendations/gru4rec/native/builder.py | $(VENV)/.installed
	$(PY) recommendations/gru4rec/native/builder.py || echo "native int8 kernel not built: serving uses torch's kernel or fp32 (same answers)"

venv: $(VENV)/.installed $(NATIVE)
dev: $(VENV)/.dev-installed $(NATIVE)

migrate: venv
	$(PY) manage.py migrate --noinput

# `make demo DATA=rees46` (or DEMO_DATA=path): a real data set, on its own SQLite database
# var/demo-NAME.sqlite3, so generated and real products never share one (var/db.sqlite3 stays the
# generated demo's). DEMO_DB overrides the file.
DEMO_NAME   = $(or $(DATA),$(basename $(notdir $(DEMO_DATA))))
DEMO_DB    ?= $(if $(DEMO_NAME),$(CURDIR)/var/demo-$(DEMO_NAME).sqlite3)
DEMO_ENV    = $(if $(DEMO_DB),DATABASE_URL=sqlite:///$(DEMO_DB))
DEMO_ARGS   = $(if $(DATA),--data "$(DATA)")

demo: venv
	@mkdir -p var
	@$(DEMO_ENV) $(PY) manage.py demo_setup --check $(DEMO_ARGS)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py demo_setup $(DEMO_ARGS)
	@echo "Serving the shop at http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(DEMO_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

services:
	@bash scripts/services.sh

browser:
	@bash scripts/browser.sh

# The suite twice: on PostgreSQL and Redis (make serve's stack), then on the embedded default that
# `make demo` runs (SQLite, local-memory cache, eager Celery), so both sides of every
# connection.vendor branch are tested. Tests that need PostgreSQL say so in their skip reason.
test: test-postgres test-sqlite

test-postgres: dev services browser
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_BASE)/1 TEST_BROKER_URL=$(REDIS_BASE)/2 \
		$(PY) -m pytest $(PYTEST_ARGS)

# The house rules as import contracts (docs/architecture.md); no database needed.
contracts: dev
	$(VENV)/bin/lint-imports

# The SQLite pass leaves out two files whose checks do not depend on the database (the PostgreSQL pass
# runs them): the API fuzz sweep (input validation, ~2 min) and the production-mode security checks
# (child processes on their own SQLite, or the live shop, which needs PostgreSQL).
SQLITE_IGNORE := --ignore=tests/test_api_fuzz.py --ignore=tests/test_security.py

test-sqlite: dev browser
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL -u TEST_BROKER_URL ENV_FILE=/dev/null \
		SHOP_VAR_DIR=$(CURDIR)/var/test-sqlite $(PY) -m pytest $(SQLITE_IGNORE) $(PYTEST_ARGS)

# Refresh the README's screenshots (docs/screenshots/) from the end-to-end run; tests never write there.
screenshots: dev services browser
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_BASE)/1 SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots \
		$(PY) -m pytest -m e2e tests/e2e -q

serve: venv services
	@bash scripts/serve.sh start

stop:
	@bash scripts/serve.sh stop

stress: dev services
	$(PY) bench/stress/run.py

clean:
	rm -rf var/log var/run var/static
