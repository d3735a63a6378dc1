# glucobridge: `make demo` runs the whole system here; `make test` runs every check.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo cluster test test-cluster lint typecheck pytest bench clean

setup:
	@bash scripts/bootstrap

demo: setup
	@$(VENV)/bin/glucobridge demo

cluster: setup
	@$(VENV)/bin/glucobridge cluster

test: setup lint typecheck pytest

# The clustered deployment under faults (three RabbitMQ nodes): a few minutes, run by CI
# after `make test`.
test-cluster: setup
	$(PY) -m pytest -q tests/cluster -o addopts="--strict-markers -ra"

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy core device firmware_sim ingest api dashboards stack

pytest:
	$(PY) -m pytest -q

bench: setup
	$(PY) -m pytest -q -s tests/bench -o addopts="--strict-markers"

clean:
	rm -rf .state $(VENV) .mypy_cache .ruff_cache .pytest_cache
