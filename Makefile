# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: install demo test lint clean accuracy bench bench-quick screenshots reliability

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "maild needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The bench compares with Roundup's mail gateway: the `bench` extra installs it into .venv.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

demo: install
	$(BIN)/maild -c config.toml demo

test: install
	$(BIN)/ruff check maild tests
	$(BIN)/pytest -q

# The reply parsers maild's reply text is scored against (bench/accuracy_replies.py); not maild deps.
REPLY_PEERS := email-reply-parser==0.5.12 mail-parser-reply==1.36

accuracy: install
	$(BIN)/python -m pip install --quiet $(REPLY_PEERS)
	$(BIN)/python bench/accuracy.py

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick

screenshots: install
	$(BIN)/python tools/screenshots.py --out screenshots --showcase docs

reliability: install
	$(BIN)/pytest -q -s -m slow tests/app/test_crash_consistency.py tests/app/test_fuzz.py

lint: install
	$(BIN)/ruff check maild tests

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
