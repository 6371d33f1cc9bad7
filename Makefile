# Two commands: `make run` (the whole demo system) and `make test` (everything the tests need, then all tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run:
	sh scripts/system-deps.sh run
	$(MAKE) --no-print-directory $(STAMP)
	$(BIN)/mis-telephony run

test:
	sh scripts/system-deps.sh test
	$(MAKE) --no-print-directory $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/pytest -m smoke tests/smoke

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	sh scripts/system-deps.sh test
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache
