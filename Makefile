# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: run test test-fast lint format install vendor system-packages migrate demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalled whenever the declared or pinned dependencies change.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt ".[test]"
	touch $@

# Browser libraries (htmx, lightweight-charts) from the npm registry, pinned by package-lock.json.
static/vendor/VERSIONS: package.json package-lock.json scripts/vendor-static
	@command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || { echo "make: Node.js and npm are needed to fetch the browser libraries (htmx, lightweight-charts) into static/vendor/: install them (Debian: apt-get install nodejs npm) and run make again" >&2; exit 1; }
	bash scripts/vendor-static

vendor: static/vendor/VERSIONS

install: $(VENV)/.installed static/vendor/VERSIONS

# Debian packages the test suite drives (skipped when present; needs root or sudo).
system-packages:
	@bash scripts/install-system-packages

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo

## run: the terminal in standalone mode (SQLite, no Redis, Celery in-process) at http://$(HOST):$(PORT)
run: demo
	$(BIN)/python manage.py run_terminal --host $(HOST) --port $(PORT)

## lint: ruff, import-linter (the layers of docs/architecture.md) and mypy with django-stubs; both configured in pyproject.toml
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## test: lint, then the whole suite (against PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
test: install system-packages lint
	$(BIN)/pytest $(PYTEST_ARGS)

## test-fast: the suite without the slow drills
test-fast: install lint
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache node_modules static/vendor
