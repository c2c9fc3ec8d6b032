# The two commands: `make demo` and `make test`. Both set everything up first.
# `make test-fast`: everything but the lab's end-to-end runs (lab, e2e markers).
.PHONY: setup demo test test-fast check lint bench

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/rootloop demo

# static checks: lint, import contracts (.importlinter), types ([tool.mypy])
check: setup
	.venv/bin/ruff check src lab tests bench
	.venv/bin/lint-imports
	.venv/bin/mypy

test: check
	.venv/bin/pytest -q

test-fast: check
	.venv/bin/pytest -q -n 2 --dist loadfile -m "not e2e and not lab"

lint: setup
	.venv/bin/ruff check src lab tests bench
	.venv/bin/ruff format --check src lab tests bench

bench: setup
	.venv/bin/python bench/sweep.py
	.venv/bin/python bench/petshop.py ../shared/data/petshop/low_traffic
	.venv/bin/python bench/loghub.py ../shared/data/loghub-2k
