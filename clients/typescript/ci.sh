#!/usr/bin/env bash
# TypeScript client CI: install pinned tools (npm ci), regenerate code with the
# local protoc-gen-es, type-check and build in strict mode, run unit tests.
# Needs only node/npm (Node 20+) plus the repository's Python venv for buf and
# google/rpc/status.proto (made by the top-level Makefile if missing) and
# error_details.proto (copied here from the same package).
# No server needed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

# 1. npm dependencies, exactly as locked; skipped when the lockfile is unchanged.
stamp=node_modules/.tokenwire-ci-stamp
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

# 2. buf (from the venv) and google/rpc/status.proto (copied into .deps by the Makefile).
if [[ ! -x "$ROOT/.venv/bin/buf" || ! -f "$ROOT/.deps/googleapis/google/rpc/status.proto" ]]; then
  make -C "$ROOT" .deps/googleapis/google/rpc/status.proto
fi

# google/rpc/error_details.proto (BadRequest, RetryInfo, ErrorInfo...) from the
# same installed googleapis-common-protos, next to status.proto.
details="$ROOT/.deps/googleapis/google/rpc/error_details.proto"
if [[ ! -f $details ]]; then
  src="$("$ROOT/.venv/bin/python" -c 'import google.rpc.error_details_pb2 as m, os; print(os.path.dirname(m.__file__))')/error_details.proto"
  cp "$src" "$details.tmp.$$" && mv "$details.tmp.$$" "$details"
fi

# 3. Generate (buf runs from the repository root: see buf.gen.yaml).
(cd "$ROOT" && PATH="$ROOT/.venv/bin:$PATH" buf generate --template clients/typescript/buf.gen.yaml)

# Optional (for CI, once gen/ is committed): fail when the committed code is stale.
if [[ ${TOKENWIRE_CHECK_GENERATED:-0} == 1 ]]; then
  git -C "$ROOT" diff --exit-code --stat -- clients/typescript/gen
  test -z "$(git -C "$ROOT" status --porcelain --untracked-files=all -- clients/typescript/gen)"
fi

# 4. Type-check (strict) and build to dist/.
rm -rf dist
node_modules/.bin/tsc -p tsconfig.json

# 5. Unit tests (in-memory fake service).
node --test dist/test/*.test.js
