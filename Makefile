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

# Bytecode is cached for the run even where the environment turns caching off
# (PYTHONDONTWRITEBYTECODE, as some containers set): else every xdist worker recompiles
# every module and re-rewrites every test file's asserts on every run (~2 s CPU each).
# The cache goes under .venv (PYTHONPYCACHEPREFIX), not into the source folders nor the
# git repositories the tests create and commit in.
test-fast: setup
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX="$(CURDIR)/.venv/pycache" .venv/bin/pytest -q -n 4 --dist worksteal -m "not e2e and not lab and not real_model and not packaging and not slow"

test-real-model: model
	.venv/bin/pytest -q -m real_model

lint: setup
	.venv/bin/ruff check src lab tests bench
	.venv/bin/ruff format --check src lab tests bench

bench: setup
	.venv/bin/python bench/sweep.py
	.venv/bin/python bench/petshop.py ../shared/data/petshop/low_traffic
	.venv/bin/python bench/loghub.py ../shared/data/loghub-2k
