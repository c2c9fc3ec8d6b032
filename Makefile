# The two commands: `make demo` and `make test`. Both set everything up first.
# `make test-fast`: every in-process test, for the editing loop (no static checks: `make check`);
#   not the lab's end-to-end runs (e2e, lab), the real local model (real_model), the wheels
#   (packaging) nor the tests that start whole processes, browsers or pip installs (slow,
#   listed in tests/fixtures/speed.py). `make test` runs all of them.
# `make test-real-model`: only the tests against the real local model (built once per machine).
.PHONY: setup model demo test test-fast test-real-model check lint bench

setup:
	@./scripts/setup.sh

# the real local model for the tests (llama.cpp's server, a 270M GGUF): built once per
# machine and cached; only the tests need it, so `make demo` never waits for it
model: setup
	@./scripts/setup-model.sh

demo: setup
	.venv/bin/rootloop demo

# static checks: lint, import contracts (.importlinter), types ([tool.mypy])
check: setup
	.venv/bin/ruff check src lab tests bench
	.venv/bin/lint-imports
	.venv/bin/mypy

# Everything, the tests against the real local model included (`model` builds it once per
# machine; a cached build installs in seconds).
test: check model
	.venv/bin/pytest -q

# PYTHONDONTWRITEBYTECODE is emptied for the run: where the environment sets it (as some
# containers do), every xdist worker would recompile every module and assertion-rewrite
# every test file on every run instead of reading __pycache__ (seconds of CPU per worker).
test-fast: setup
	PYTHONDONTWRITEBYTECODE= .venv/bin/pytest -q -n 3 --dist worksteal -m "not e2e and not lab and not real_model and not packaging and not slow"

test-real-model: model
	.venv/bin/pytest -q -m real_model

lint: setup
	.venv/bin/ruff check src lab tests bench
	.venv/bin/ruff format --check src lab tests bench

bench: setup
	.venv/bin/python bench/sweep.py
	.venv/bin/python bench/petshop.py ../shared/data/petshop/low_traffic
	.venv/bin/python bench/loghub.py ../shared/data/loghub-2k
