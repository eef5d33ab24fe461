# People and CI run the same targets. `make run` and `make test` install what they need.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
HOST   ?= 0.0.0.0
PORT   ?= 8000

.PHONY: install run migrate check test clean bench bench-smoke

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
	$(BIN)/ruff check service otel tests scripts bench
	$(BIN)/ruff format --check service otel tests scripts bench
	$(BIN)/mypy
	./scripts/check_configs.sh

## Everything CI runs.
test: check
	$(BIN)/python -m pytest

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

## The overhead benchmark (about 13 min): writes docs/performance.md and docs/performance.png.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench

## The benchmark harness end to end in under a minute; publishes nothing.
bench-smoke: $(VENV)/.installed-bench
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# --- Operations (README, "Operations") ---
.PHONY: doctor backup restore
DOCTOR_ARGS  ?=
BACKUP_ARGS  ?= compose
RESTORE_ARGS ?= compose

## Check the running stack (ports, app, Prometheus targets, Grafana, every dashboard query) and
## print a fix per failure. DOCTOR_ARGS="--stack local" when the services run as local processes.
doctor: install
	$(BIN)/python -m scripts.doctor $(DOCTOR_ARGS)

## Prometheus (snapshot API) and Grafana's data -> backups/monitoring-<UTC time>.tar.gz. Production:
## COMPOSE="docker compose -f docker-compose.prod.yml" BACKUP_ARGS="compose --stop-and-copy".
backup:
	$(PYTHON) scripts/backup.py $(BACKUP_ARGS)

## make restore ARCHIVE=backups/monitoring-<time>.tar.gz (replaces the compose volumes' data; asks).
restore:
	@test -n "$(ARCHIVE)" || { echo "usage: make restore ARCHIVE=backups/<file>.tar.gz"; exit 2; }
	$(PYTHON) scripts/restore.py $(ARCHIVE) $(RESTORE_ARGS)

# --- Faults and bad input (README, "Faults and bad input") ---
.PHONY: soak

## The fault and bad-input tests at length (about 10 min): 60 s outages, OTLP over gRPC too,
## 1000 generated cases per API operation and mode, a 200,000-request cardinality flood.
soak: install
	SOAK=1 $(BIN)/python -m pytest tests/faults tests/test_bad_input.py -ra -s
