# The two commands a newcomer needs: `make run` and `make test`. Everything else is installed on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-sqlite test-postgres bench install chromium check clean

run: $(STAMP)
	@mkdir -p var/staticfiles
	@test -f .env || { cp .env.example .env && echo "Created .env from .env.example (development settings)."; }
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py rundev

test: $(STAMP) chromium
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite: $(STAMP)
	@echo "== Test suite on SQLite =="
	DATABASE_URL=sqlite:///$(CURDIR)/var/test.sqlite3 $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@echo "== Test suite on PostgreSQL =="
	scripts/with-postgres $(PY) -m pytest $(PYTEST_ARGS)

# On a throw-away PostgreSQL, the production database; BENCH=drain (or any words) picks benchmarks by name.
bench: $(STAMP)
	scripts/with-postgres $(PY) bench/run.py $(BENCH)

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

chromium:
	@scripts/ensure-chromium

check: $(STAMP)
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
