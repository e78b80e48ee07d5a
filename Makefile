# bingeo: `make demo` sets everything up and runs the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup system-deps demo test lint serve bench clean

setup: system-deps $(VENV)/.installed
	./scripts/fetch-web-assets.sh

system-deps:
	./scripts/install-system-deps.sh chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(BIN)/bingeo db start
	$(BIN)/bingeo db upgrade
	$(BIN)/bingeo demo
	$(BIN)/bingeo demo --real

test: setup
	$(BIN)/ruff check bingeo api tests scripts bench
	$(BIN)/pytest -q

serve: setup
	$(BIN)/bingeo serve

bench: setup
	$(BIN)/python bench/bench_import_addresses.py --rows 1000000

clean:
	rm -rf $(VENV) out .pytest_cache
