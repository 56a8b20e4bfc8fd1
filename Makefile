# The README's two commands. Both create .venv and install the pinned set on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Tests run in parallel on every core; the suite is sized for 2.
PYTEST_WORKERS ?= auto

.PHONY: demo test lint bench clean install browser kqlcheck

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ci-telemetry demo

# The report test opens the HTML in headless Chromium (Debian's package). Installed when it is
# missing and we may install packages; otherwise that one test is skipped with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: the browser test will be skipped"; }

# Microsoft's KQL parser (npm @kusto/language-service-next, pinned by package-lock.json) for
# tests/warehouse/test_kql_parser.py. That test fails, not skips, without it.
NODE_STAMP := node_modules/.installed-stamp
KQLCHECK_HELP := "Node.js 18+ and npm are needed for the KQL parser test: apt-get install nodejs npm, then make kqlcheck"
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo $(KQLCHECK_HELP); exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

kqlcheck: $(NODE_STAMP)

test: $(STAMP) browser $(NODE_STAMP)
		$(BIN)/ruff check etl tests bench notebooks
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

lint: $(STAMP)
	$(BIN)/ruff check etl tests bench notebooks

bench: $(STAMP)
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data reports .pytest_cache node_modules
