#!/usr/bin/env bash
# Rust client CI: install the codegen plugins, regenerate, format check,
# lint (clippy, warnings are errors), unit tests + doctests, build examples.
# Needs no server. Run from anywhere:  clients/rust/ci.sh
#
# Toolchain: cargo/rustc >= 1.88. buf (pinned as buf-bin in the top-level
# pyproject.toml) and google/rpc/status.proto come from the project's venv,
# made by the top-level Makefile (whose check-generated then diffs clients/).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

PROST_VERSION=0.5.0 # protoc-gen-prost (prost 0.14)
TONIC_VERSION=0.5.0 # protoc-gen-tonic (tonic 0.14, tonic-prost codec)

step() { printf '\n== %s\n' "$*"; }

step "codegen plugins -> clients/rust/.bin"
installed() { grep -q "\"$1 $2 " "$HERE/.bin/.crates2.json" 2>/dev/null && [ -x "$HERE/.bin/bin/$1" ]; }
if ! installed protoc-gen-prost "$PROST_VERSION" || ! installed protoc-gen-tonic "$TONIC_VERSION"; then
  cargo install --locked --root "$HERE/.bin" \
    "protoc-gen-prost@$PROST_VERSION" "protoc-gen-tonic@$TONIC_VERSION"
else
  echo "protoc-gen-prost $PROST_VERSION and protoc-gen-tonic $TONIC_VERSION already installed"
fi

step "generate (buf, clients/rust/buf.gen.yaml)"
make -C "$ROOT" --no-print-directory .deps/googleapis/google/rpc/status.proto
(cd "$ROOT" && PATH="$ROOT/.venv/bin:$PATH" buf generate --template clients/rust/buf.gen.yaml)

cd "$HERE"
step "cargo fmt --check"
cargo fmt --check

step "cargo build --examples"
cargo build --locked --examples

step "cargo clippy -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "cargo test"
cargo test --locked

echo
echo "rust client OK: examples in $HERE/target/debug/examples/{stream,session,structured,samples,retry}"
