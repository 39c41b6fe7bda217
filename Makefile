# Dredge: two commands on a fresh machine.
#   make demo   venv, install, generate a sample, replay it into DuckDB, show top talkers and
#               the command that serves its dashboards
#   make test   venv, install, lint, run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: native install test unit lint typecheck demo bench clean

NATIVE := $(wildcard dredge/*.h dredge/*/_native.c dredge/*/*/_native.c)

$(STAMP): pyproject.toml $(NATIVE)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m compileall -q dredge  # bytecode now: the first run starts as fast as the next
	touch $(STAMP)

install: $(STAMP)

# after editing a kernel's C file: rebuild the extensions in place (make install does it too)
native: install
	$(BIN)/python -m pip install -q --no-deps -e .

test: install lint
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check dredge tests benchmarks
	$(BIN)/mypy

demo: install
	$(BIN)/dredge generate $(DEMO) --flows 300000 --seed 7
	rm -f $(DEMO)/dredge.duckdb
	$(BIN)/dredge replay $(DEMO)/logs --index $(DEMO)/owners.jsonl --cidrs $(DEMO)/networks.csv --db $(DEMO)/dredge.duckdb
	$(BIN)/dredge query top --db $(DEMO)/dredge.duckdb --by src_app,dst_app --limit 10
	$(BIN)/dredge query cross-az --db $(DEMO)/dredge.duckdb --limit 10
	@echo
	@echo "Dashboards: $(BIN)/dredge serve --db $(DEMO)/dredge.duckdb   then open http://127.0.0.1:9108/"

bench: install
	$(BIN)/python benchmarks/replay.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache

-include infra/druid/druid.mk
-include infra/aws/deploy.mk
-include infra/superset/superset.mk
