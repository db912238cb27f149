# Relay: `make run` runs the whole product, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: run test lint typecheck check migrate demo clean bench

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PIP) install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

migrate: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput -v0

demo: migrate
	$(PY) manage.py bootstrap_demo

run: demo
	$(PY) manage.py runstack

test: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

# django-stubs imports the settings, which refuse the public built-in SECRET_KEY when
# DATABASE_URL is set (CI sets it): type checking serves nothing, so it gets a key of
# its own unless one is given.
typecheck: $(VENV)/.dev
	SECRET_KEY="$${SECRET_KEY:-relay-typecheck-only-never-serves-a-request-5f0c2a9e}" $(VENV)/bin/mypy

check: lint typecheck test

# The final bench set (bench/final.py, docs/performance.md): every bench in turn on
# PostgreSQL and Redis from DATABASE_URL / REDIS_URL; results in var/bench/final.md.
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--smoke" or "--only history,servers".
bench: $(VENV)/.dev
	$(PY) bench/final.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
