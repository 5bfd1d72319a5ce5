# The two commands a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup demo test lint typecheck importlint pytest node browser nginx bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,redis,postgres]"
	@touch $@

setup: $(VENV)/.installed

# Node 22, the conformance suite and the TypeScript SDK, in a git-ignored project folder.
node:
	@bash scripts/setup_node.sh

# Debian's chromium for the admin browser tests (apt-get when missing and we are root).
browser:
	@bash scripts/setup_browser.sh

# Debian's nginx for the test of the README's nginx configuration (apt-get when missing and we are root).
nginx:
	@bash scripts/setup_nginx.sh

demo: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup
	$(PY) -m mcp_sse.daphne_server --application-close-timeout 60 -b $(HOST) -p $(PORT) demo_project.asgi:application

lint: setup
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy

importlint: setup
	$(VENV)/bin/lint-imports

pytest: setup node browser nginx
	@bash scripts/run_pytest.sh

test: setup node browser nginx lint typecheck importlint pytest

# Load benchmarks (about 8 minutes; see benchmarks/README.md): make bench BENCH_ARGS="--quick"
bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
