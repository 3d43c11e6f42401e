#!/usr/bin/env bash
# The llama.cpp comparison's own environment: llama-cpp-python from PyPI, which pip
# compiles from its source distribution for this CPU (about 7.5 minutes on 2 cores).
# Only bench/speculation.py --llamacpp uses it; the service never imports it.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-llamacpp
VERSION=0.3.36
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# Native CPU flags (AVX2/FMA here); OpenMP threads pinned by n_threads in the bench.
CMAKE_ARGS="-DGGML_NATIVE=ON" "$VENV/bin/pip" install --quiet --no-cache-dir "llama-cpp-python==$VERSION"
"$VENV/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
