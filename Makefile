# Foley: `make demo` and `make test` work on a fresh machine (Debian, Python 3.11, 2 cores, no GPU).
# Every step is idempotent: the venv is reused and only reinstalled when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALL_STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.apt-installed
# The torch requirement: the local CPU wheel here; on a GPU machine pass e.g. TORCH=torch (a CUDA build).
TORCH ?= torch==2.13.0
# Debian packages the project uses at run or test time (keep in sync with README "Install").
APT_PACKAGES := espeak-ng
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install test test-all lint format demo bench clean

install: $(INSTALL_STAMP) $(APT_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, pinned to the local CPU wheel, so nothing resolves a CUDA build or torchaudio/torchvision.
$(INSTALL_STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e '.[dev,speech]'
	# aisfx ships the SFX embedding weights; its metadata pins old librosa/numpy that v2a never imports
	$(PIP) install --quiet --no-deps aisfx==0.1.2
	# mediapipe ships the face mesh for dialogue timing; its metadata pins numpy<2/protobuf<5, which the graph API
	# v2a uses does not need (see pyproject.toml); no wheels for Python >= 3.13
	$(PIP) install --quiet --no-deps "mediapipe==0.10.21; python_version < '3.13'"
	touch $@

$(APT_STAMP): | $(PY)
	@if [ "$$(id -u)" = 0 ]; then \
		missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	else echo "not root: install these Debian packages yourself if missing: $(APT_PACKAGES)"; fi
	touch $@

# pytest exit code 5 means "no tests collected": that must fail, never pass silently.
test: install
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-all: install
	$(PY) -m pytest -q -m ""

lint: install
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

format: install
	$(PY) -m ruff format src tests benchmarks
	$(PY) -m ruff check --fix src tests benchmarks

demo: install
	$(PY) -m v2a.demo --out demo-out

bench: install
	$(PY) benchmarks/decode_throughput.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache
