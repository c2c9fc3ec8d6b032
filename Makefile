# The two commands: `make demo` and `make test`. Both set everything up first.
# `make test-fast`: everything but the lab's end-to-end runs (lab, e2e markers).
# `make test-real-model`: only the tests against the real local model (marker real_model).
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

test-fast: check
	.venv/bin/pytest -q -n 2 --dist loadfile -m "not e2e and not lab and not real_model"

test-real-model: model
	.venv/bin/pytest -q -m real_model

lint: setup
	.venv/bin/ruff check src lab tests bench
	.venv/bin/ruff format --check src lab tests bench

bench: setup
	.venv/bin/python bench/sweep.py
	.venv/bin/python bench/petshop.py ../shared/data/petshop/low_traffic
	.venv/bin/python bench/loghub.py ../shared/data/loghub-2k
