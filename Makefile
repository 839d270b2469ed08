# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# A strict editable install (docs/development.md): build/__editable__.*/ holds a link to
# each file of the package, twisted/plugins/stowpair_plugin.py too, so twistd finds the
# taps and runs the working tree's code. A new or removed file needs a new install: FILES
# lists them, and changes only when the list does (not when a file is edited).
# setuptools' banner on each such install ("Strict editable installation performed...,
# do not remove build/__editable__...") is filtered out: docs/development.md says it.
EDITABLE_INSTALL := PYTHONWARNINGS="ignore:Editable installation" \
	$(PIP) install -q --config-settings editable_mode=strict -e
FILES := $(VENV)/.files
$(shell mkdir -p $(VENV) && find stowpair twisted -type f ! -path '*/__pycache__/*' \
	! -name '*.pyc' ! -name dropin.cache | LC_ALL=C sort > $(FILES).new && \
	{ cmp -s $(FILES).new $(FILES) || mv $(FILES).new $(FILES); }; rm -f $(FILES).new)
CONFIG ?= conf/stowpair.toml
OIDC_PEER := tests/peers/oidc

.PHONY: run test lint typecheck interop bench bench-quick venv clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "stowpair needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(PY) setup.py $(FILES)
	$(EDITABLE_INSTALL) .
	@touch $@

$(VENV)/.installed-test: $(PY) setup.py $(FILES)
	$(EDITABLE_INSTALL) '.[test]'
	@touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/twistd -n --pidfile= stowpair -c $(CONFIG)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check stowpair tests twisted bench
	$(VENV)/bin/ruff format --check stowpair tests twisted bench

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -m "not interop"

# Real peers (Orthanc, dcmtk, socat); tests skip with a reason when a peer is missing,
# unless STOWPAIR_REQUIRE_PEERS=1 (as in CI).
interop: $(VENV)/.installed-test $(OIDC_PEER)/node_modules/.installed
	$(VENV)/bin/pytest -m interop -rs tests

# oidc-provider (npm), the authorization server of the token tests; skipped without npm.
$(OIDC_PEER)/node_modules/.installed: $(OIDC_PEER)/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(OIDC_PEER) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the OAuth 2.0 interop tests will skip (apt-get install nodejs npm)"; fi

# Benchmarks against peers (docs/benchmarks.md); results in bench/results/.
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(EDITABLE_INSTALL) '.[test,bench]'
	@touch $@

bench: $(VENV)/.installed-bench
	$(VENV)/bin/python bench/run.py --chart docs/benchmarks.png

bench-quick: $(VENV)/.installed-bench
	$(VENV)/bin/python bench/run.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
