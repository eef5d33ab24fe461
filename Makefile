# People and CI run the same targets. `make run` and `make test` install what they need.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
HOST   ?= 0.0.0.0
PORT   ?= 8000

.PHONY: install run migrate check test clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## Serve the memo API on the embedded default (SQLite under ./data, no Redis, /metrics live).
run: install
	$(BIN)/uvicorn service.main:app --host $(HOST) --port $(PORT)

## Apply the database migrations to DATABASE_URL (the service also applies them on start).
migrate: install
	$(BIN)/python -m service.migrate

## Lint, type checks, and the Prometheus configs checked by promtool.
check: install
	$(BIN)/ruff check service otel tests
	$(BIN)/ruff format --check service otel tests
	$(BIN)/mypy
	./scripts/check_configs.sh

## Everything CI runs.
test: check
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
