# Two commands a fresh machine needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.regflow-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test lint typecheck format bench bench-scale ui clean

setup: $(STAMP)

# Reinstall only when the project's dependency files change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@# The Prefect database's migrations (about 7 s) run here once, not in the first `make run`.
	DO_NOT_TRACK=1 $(BIN)/prefect server database upgrade -y >/dev/null
	@touch $(STAMP)

run: setup
	$(BIN)/regflow train data/seed.csv --target y --features x

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck.py
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy on the package, through a symlinked view of its package-dir mapping (see the script).
typecheck: setup
	$(BIN)/python scripts/typecheck.py

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# regflow's dask engine against DuckDB on 10M and 100M rows (~9 GB of Parquet written, then
# deleted); BENCH_ARGS="--scale-rows 10M,40M" picks other sizes. Not part of `make bench`.
bench-scale: setup
	$(BIN)/python benchmarks/run.py --parts scale $(BENCH_ARGS)

ui: setup
	$(BIN)/prefect server start --host 127.0.0.1

clean:
	rm -rf $(VENV) artifacts/runs artifacts/registry
