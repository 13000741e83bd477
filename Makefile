# Two entry points for a fresh machine: `make demo` and `make test`.
# Prerequisites: Python 3.11+, a JDK 17+ (java on PATH) and Maven 3.8+ (mvn on PATH).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install native lint test test-unit test-integration demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dualwrite needs Python 3.11+ (found " + sys.version.split()[0] + ")")'
	@command -v java >/dev/null || { echo "dualwrite needs a JDK 17+ (java on PATH) for the local Kafka broker"; exit 1; }
	@command -v mvn >/dev/null || { echo "dualwrite needs Maven 3.8+ (mvn on PATH) to fetch the Kafka jars"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The worker's hot path compiled with mypyc (streams/native.py): about a minute the first time
# and after an edit of streams/ or topics/, at once otherwise. Without a C compiler it says why
# and the worker runs the sources as written.
native: install
	@$(BIN)/dualwrite compile || echo "(the worker runs interpreted: see above)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Unit, contract, integration and chaos tiers on TEST_WORKERS parallel workers (one test module
# per worker at a time); each worker starts its own Kafka broker unless
# DUALWRITE_KAFKA__BOOTSTRAP_SERVERS names one. The jars are fetched once, before the workers.
# They run the hot path compiled, as the worker does; then the unit tier runs again with it
# interpreted (the sources as written, and the tests that patch what compiled code calls).
TEST_WORKERS ?= 2

test: lint native
	$(BIN)/dualwrite kafka fetch --flink
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15
	DUALWRITE_NATIVE=0 $(BIN)/pytest -q -n $(TEST_WORKERS) -m unit

test-unit: native
	$(BIN)/pytest -q -m unit

test-integration: native
	$(BIN)/pytest -q -m "integration or contract or chaos"

demo: native
	$(BIN)/dualwrite demo

bench: native
	$(BIN)/dualwrite bench pipeline

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
