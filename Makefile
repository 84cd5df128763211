# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint browser clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m optarena.cli demo --out optarena-demo

test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider tests

# Performance and reference benchmarks; results go into BENCHMARKS.md with date and command.
# Peer libraries (pycma, cmaes, pyswarms, evotorch, nevergrad) come from the [bench] extra.
bench: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,bench]"
	set -e; for f in benchmarks/*.py; do echo "== $$f"; OMP_NUM_THREADS=1 $(PY) $$f; done

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

# A headless browser for tests/test_report.py (which skips without one; tests never install
# software). Debian/Ubuntu, as root; elsewhere install Chromium yourself or set CHROMIUM=/path.
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) optarena-demo build *.egg-info src/*.egg-info
