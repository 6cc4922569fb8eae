# te-sweep: set-up, the main job, and the tests.
# `make sweep` and `make test` create .venv when missing (torch first, the rest under
# constraints.txt so nothing replaces it) and install Debian's Fashion-MNIST when possible.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: sweep test lint bench mutate install data browser gpu-carry clean

install: $(STAMP) data

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Real data offline: Debian's dataset-fashion-mnist, only as root on Debian, only when missing.
data:
	@if [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

# A headless browser for the report's rendering test: Debian's chromium, as root, when missing.
browser:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# The main job: the default space on real Fashion-MNIST on a private local Ray, 4
# configurations x 3 seeds + 3 baselines; it leaves results/default-<UTC time>/ with the
# Parquet tables, optuna.db and report.html.
sweep: install
	$(BIN)/te-sweep launch search_spaces/default.yaml --num-samples 4 --storage results

# The checks (configured in pyproject.toml): ruff's linter and formatter, and mypy (strict, on
# every layer). CI runs them before the tests; `ruff format` applies the format.
lint: install
	$(BIN)/ruff check te_sweep tests tools bench
	$(BIN)/ruff format --check te_sweep tests tools bench
	$(BIN)/mypy

test: install browser
	$(BIN)/python -m pytest -q

# Mutation testing of the modules whose numbers users read (not CI: an hour or more on 2
# cores): cosmic-ray's operator mutants and the semantic mutants of
# tools/semantic_mutants.toml, scored apart per module, in a copy of the tree. See TESTING.md.
# MUTATE_ARGS passes options on, e.g. make mutate MUTATE_ARGS="--keep /tmp/mutation-run",
# MUTATE_ARGS="--semantic-only" (minutes) or MUTATE_ARGS="--cosmic-ray-only summary".
MUTATE_ARGS ?=
mutate: install
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,mutate]'
	$(BIN)/python tools/mutate.py $(MUTATE_ARGS)

# Benchmarks (not tests): the CPU set, about 5 minutes; see BENCHMARKS.md.
# On a GPU machine add: $(BIN)/python bench/gpu.py
bench: install
	$(BIN)/python bench/te_estimator.py
	$(BIN)/python bench/epoch_overhead.py --subset 20000 --repeats 5
	$(BIN)/python bench/data_path.py
	$(BIN)/python bench/sweep_overhead.py

# What bench/gpu_checks.sh needs on a lent GPU machine, which reaches no network: Fashion-MNIST's
# four .gz files (Debian's fashion-mnist package) and pyinform's wheel, in the ignored .gpu-carry.
gpu-carry: install
	mkdir -p .gpu-carry/fashion-mnist .gpu-carry/wheels
	cp $(FASHION_DIR)/*-ubyte.gz .gpu-carry/fashion-mnist/
	$(BIN)/pip download --quiet --disable-pip-version-check --no-deps -d .gpu-carry/wheels \
		"$$(grep -o 'pyinform==[0-9.]*' pyproject.toml)"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
