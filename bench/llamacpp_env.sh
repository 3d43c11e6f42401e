#!/usr/bin/env bash
# The llama.cpp comparison's own environment: llama-cpp-python from PyPI, which pip
# compiles from its source distribution (about 7.5 minutes on 2 cores). Only the
# benchmarks (bench/speculation.py --llamacpp, bench/engine.py) use it; the service
# never imports it.
#
# GGML_NATIVE=ON dies with "Illegal instruction" on some Intel Xeon VMs (the
# compiler's -march=native sees more than the hypervisor lets run), so the SIMD
# levels come from the kernel's view of the CPU (/proc/cpuinfo flags). The chosen
# CMAKE_ARGS are stored in the venv: on a machine with other flags it rebuilds.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-llamacpp
VERSION=0.3.36
STAMP="$VENV/.cmake-args"

cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { [[ "$cpu_flags" == *" $1 "* ]]; }
onoff() { if has "$1"; then echo ON; else echo OFF; fi; }

# With GGML_NATIVE=OFF, llama.cpp turns AVX/AVX2/BMI2/FMA/F16C on by default: say
# each one explicitly so a CPU without them gets a build it can run.
args="-DGGML_NATIVE=OFF"
args+=" -DGGML_AVX=$(onoff avx) -DGGML_AVX2=$(onoff avx2) -DGGML_BMI2=$(onoff bmi2)"
args+=" -DGGML_FMA=$(onoff fma) -DGGML_F16C=$(onoff f16c)"
if has avx512f; then
  args+=" -DGGML_AVX512=ON -DGGML_AVX512_VNNI=$(onoff avx512_vnni) -DGGML_AVX512_BF16=$(onoff avx512_bf16)"
else
  args+=" -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
fi
# AMX tiles need kernel permission (arch_prctl) and broke on these VMs: never.
args+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$args" ] &&
  "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
  exit 0
fi
echo "building llama-cpp-python $VERSION with CMAKE_ARGS=$args" >&2
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# --no-cache-dir: a wheel cached from another CPU's flags must not be reused.
CMAKE_ARGS="$args" "$VENV/bin/pip" install --quiet --no-cache-dir "llama-cpp-python==$VERSION"
"$VENV/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
# Written last: an interrupted build leaves no stamp and is redone next time.
echo "$args" >"$STAMP"
