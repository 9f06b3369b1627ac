# The two commands a newcomer runs: `make demo` and `make test`.
CARGO ?= cargo
VENV  := .venv
PY    := $(VENV)/bin/python
BIN   := target/release/vscope-export

.PHONY: all build demo test venv readers airflow delta-old java chromium bench bench-quick clean

all: build

## `make build FEATURES=delta` adds cargo features to the default ones (`delta`: Delta Lake output).
FEATURES ?=

build:
	$(CARGO) build --release --locked $(if $(FEATURES),--features $(FEATURES))

## Export one day of the built-in simulator (300 VMs, all 20 metrics) into ./out, and report on it.
demo: build
	$(BIN) run jobs/demo.toml --output out
	$(BIN) report out --format html --output out/report.html
	@echo "report: $(abspath out/report.html)"

## Every test: the formatting (cargo fmt) and the lints (`[lints]` in Cargo.toml, clippy.toml) with
## the default features, with `delta` added and without default features; unit, integration
## (against the in-process simulator; built with `delta`, so the Delta Lake output is read back by
## the Python deltalake package and polars, tests/it/delta.rs), DuckDB interop, the reader matrix (tests/it/readers.rs: every reader version of
## tests/interop/readers/), the report against a DuckDB oracle and in headless Chromium; the
## deployment recipes of deploy/ run by a real Airflow and as Kubernetes would start their pods
## (tests/deploy/check_recipes.py); then the exporter alone, without `report` and without the simulator (`sim`): it must build, and its
## tests that need neither must pass.
test: venv readers chromium airflow delta-old
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked --features delta --all-targets -- -D warnings
	$(CARGO) clippy --locked --no-default-features --all-targets -- -D warnings
	VSCOPE_PYTHON="$(abspath $(PY))" VSCOPE_READERS="$(abspath $(READERS_DIR))" \
	VSCOPE_DELTA_OLD_PYTHON="$(abspath $(DELTA_OLD_VENV))/bin/python" \
	VSCOPE_CHROMIUM="$$(command -v chromium)" \
		$(CARGO) test --locked --features delta --all-targets
	$(CARGO) build --locked --features delta
	$(PY) tests/deploy/check_recipes.py --exporter target/debug/vscope-export \
		--airflow $(AIRFLOW_VENV)/bin/airflow
	$(CARGO) test --locked --features delta --doc
	$(CARGO) check --locked --no-default-features
	$(CARGO) test --locked --no-default-features

## A local virtual environment with the real DuckDB and pyarrow, for the interop tests, and an
## S3 server (moto) with polars, for the object-storage tests (tests/it/object_store.rs).
venv: $(VENV)/.installed

$(VENV)/.installed: tests/interop/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
	touch $@

## An older polars and deltalake, in their own environment, to read the Delta output with too
## (tests/it/delta.rs).
DELTA_OLD_VENV := .venv-delta-old

delta-old: $(DELTA_OLD_VENV)/.installed

$(DELTA_OLD_VENV)/.installed: tests/interop/delta-old-requirements.txt
	rm -rf $(DELTA_OLD_VENV)
	python3 -m venv $(DELTA_OLD_VENV)
	$(DELTA_OLD_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

## Airflow, in its own environment, to run the DAG in deploy/airflow/ (tests/deploy/check_recipes.py).
AIRFLOW_VENV := .venv-airflow

airflow: $(AIRFLOW_VENV)/.installed

$(AIRFLOW_VENV)/.installed: tests/deploy/airflow-requirements.txt
	rm -rf $(AIRFLOW_VENV)
	python3 -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

## The reader matrix: one virtual environment per reader version, each from its pinned
## requirements file, rebuilt only when that file changes. Spark's need a Java runtime.
READERS_DIR := .venv-readers
READERS     := $(basename $(notdir $(wildcard tests/interop/readers/*.txt)))
READER_ENVS := $(READERS:%=$(READERS_DIR)/%/.installed)

readers: $(READER_ENVS)

$(READERS_DIR)/%/.installed: tests/interop/readers/%.txt
	rm -rf $(READERS_DIR)/$*
	python3 -m venv $(READERS_DIR)/$*
	$(READERS_DIR)/$*/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(filter $(READERS_DIR)/spark-%,$(READER_ENVS)): | java

## Debian's headless Chromium for the report's rendering test, only when there is none.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

## A Java runtime for Spark, from Debian's packages, only when there is none.
java:
	@command -v java >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless; }

## The benchmark: the simulator in its own process, 1,000 VMs x 13 metrics over 1 and
## 30 days, a 50 ms latency scenario, and DuckDB and plain Python on the same JSON responses.
## Prints one table and writes bench-out/results.json. BENCH_ARGS="--runs 5 --only 1d" etc.
bench: build venv
	$(PY) bench/run.py $(BENCH_ARGS)

## The same, scaled down to 100 VMs for development (about a minute).
bench-quick: build venv
	$(PY) bench/run.py --quick $(BENCH_ARGS)

clean:
	rm -rf out $(VENV) $(READERS_DIR)
	$(CARGO) clean
