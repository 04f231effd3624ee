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

# Both databases at once, each suite over two processes (pytest-xdist) so that a test waiting on a worker
# process or the browser leaves the cores to the others; each suite's output is printed whole when it ends.
PYTEST_ARGS ?= -n 2
test: $(STAMP) chromium
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

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
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py check
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
