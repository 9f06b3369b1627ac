# The two commands a newcomer runs: `make demo` and `make test`.
CARGO ?= cargo
VENV  := .venv
PY    := $(VENV)/bin/python
BIN   := target/release/vscope-export

.PHONY: all build demo test venv bench bench-quick clean

all: build

build:
	$(CARGO) build --release --locked

## Export one day of the built-in simulator (300 VMs, all 20 metrics) into ./out.
demo: build
	$(BIN) run jobs/demo.toml --output out

## Every test: unit, integration (against the in-process simulator) and DuckDB interop.
test: venv
	VSCOPE_PYTHON="$(abspath $(PY))" $(CARGO) test --locked --all-targets
	$(CARGO) test --locked --doc

## A local virtual environment with the real DuckDB and pyarrow, for the interop tests.
venv: $(VENV)/.installed

$(VENV)/.installed: tests/interop/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
	touch $@

## The benchmark: the simulator in its own process, 1,000 VMs x 13 metrics over 1 and
## 30 days, a 50 ms latency scenario, and DuckDB and plain Python on the same JSON responses.
## Prints one table and writes bench-out/results.json. BENCH_ARGS="--runs 5 --only 1d" etc.
bench: build venv
	$(PY) bench/run.py $(BENCH_ARGS)

## The same, scaled down to 100 VMs for development (about a minute).
bench-quick: build venv
	$(PY) bench/run.py --quick $(BENCH_ARGS)

clean:
	rm -rf out $(VENV)
	$(CARGO) clean
