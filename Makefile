# Two commands on a fresh machine: `make report` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

export DVC_NO_ANALYTICS := 1
# dvc.yaml runs `python -m pipeline ...`: that must be the venv's python.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup report test bench lint lock demo clean ci plots-template

setup: $(STAMP)

# The venv is rebuilt whenever the lock file changes; the package (and its C extension)
# whenever one of its C sources does.
$(STAMP): requirements.lock pyproject.toml pipeline/native/_native.c pipeline/native/_tsne.c \
		pipeline/native/_space.c pipeline/native/_portable.h
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

report: setup
	dvc repro
	@echo "report: reports/quickdraw.html (metrics: reports/metrics.json)"

test: setup
	$(BIN)/python -m pytest -ra

# The CI workflow's steps (.github/workflows/pipeline.yml), locally: rebuild, fail unless the
# committed dvc.lock is what `dvc repro` produced, write the metrics/params diff against
# BASE_REV (default HEAD) to reports/ci-summary.md. `make ci BASE_REV=main` compares with main.
ci: setup
	bash ci/pipeline-check.sh

bench: setup
	$(BIN)/python benchmarks/run.py

lint: setup
	$(BIN)/ruff check pipeline tests benchmarks ci
	$(BIN)/ruff format --check pipeline tests benchmarks ci

# Re-pin every dependency (needs the package index).
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--excludes ci/lock-excludes.txt -o requirements.lock

# Rebuild the offline page of `dvc plots show` (third_party/vega/plots_page.html) from the npm
# registry's vega, vega-lite and vega-embed, checked against third_party/vega/pins.json.
plots-template: setup
	$(BIN)/python ci/plots_template.py

# Regenerate the bundled demo data (deterministic: the bytes do not change).
demo: setup
	$(BIN)/python -m pipeline demo --out data/demo

clean:
	rm -rf $(VENV) data/raw data/processed data/sample reports/*.html reports/*.json reports/*.png reports/ci-summary.md
