# The two commands: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lint bench

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/rootloop demo

test: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/pytest -q

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench

bench: setup
	.venv/bin/python bench/sweep.py
	.venv/bin/python bench/petshop.py ../shared/data/petshop/low_traffic
	.venv/bin/python bench/loghub.py ../shared/data/loghub-2k
