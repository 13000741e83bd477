# Two entry points for a fresh machine: `make demo` and `make test`.
# Prerequisites: Python 3.11+, a JDK 17+ (java on PATH) and Maven 3.8+ (mvn on PATH).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install lint test test-unit test-integration demo bench clean

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

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Unit, contract, integration and chaos tiers on TEST_WORKERS parallel workers (one test module
# per worker at a time); each worker starts its own Kafka broker unless
# DUALWRITE_KAFKA__BOOTSTRAP_SERVERS names one. The jars are fetched once, before the workers.
TEST_WORKERS ?= 2

test: lint
	$(BIN)/dualwrite kafka fetch --flink
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test-unit: install
	$(BIN)/pytest -q -m unit

test-integration: install
	$(BIN)/pytest -q -m "integration or contract or chaos"

demo: install
	$(BIN)/dualwrite demo

bench: install
	$(BIN)/dualwrite bench pipeline

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
