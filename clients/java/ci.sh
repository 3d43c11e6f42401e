#!/usr/bin/env bash
# Java client CI: fetch the codegen plugins, regenerate, build with all lint
# warnings as errors, run the unit tests (in-process fake server; no tokenwire
# server needed), and write target/classpath.txt for running the examples, which
# src/examples/java holds and the test compile builds into target/test-classes
# (so the library jar has none):
#   java -cp clients/java/target/classes:clients/java/target/test-classes:$(cat clients/java/target/classpath.txt) \
#     dev.tokenwire.examples.StreamExample
# Needs: java 17+, mvn, make and python3 (buf and google/rpc/status.proto come
# from the repository's .venv via the top-level Makefile).
# --check-generated: also fail if the generated sources differ from git's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
gen_dir="src/main/java/dev/tokenwire/v1"
mvn=(mvn -B -q --no-transfer-progress -Dstyle.color=never)
check_generated=false
[[ "${1:-}" == "--check-generated" ]] && check_generated=true

start=$(date +%s)
cd "$root"

# buf (pinned in pyproject.toml) and the google.rpc protos the workspace imports.
if [[ ! -x .venv/bin/buf || ! -f .deps/googleapis/google/rpc/status.proto ]]; then
  make .deps/googleapis/google/rpc/status.proto
fi

# protoc and protoc-gen-grpc-java from Maven Central (versions pinned in pom.xml).
cd "$here"
if [[ ! -x .bin/protoc || ! -x .bin/protoc-gen-grpc-java || ! .bin/.stamp -nt pom.xml ]]; then
  "${mvn[@]}" dependency:copy@codegen-tools
  chmod +x .bin/protoc .bin/protoc-gen-grpc-java
  touch .bin/.stamp
fi

# Regenerate from scratch so that removed messages leave no stale classes.
rm -rf "$gen_dir"
(cd "$root" && PATH="$root/.venv/bin:$PATH" buf generate --template clients/java/buf.gen.yaml)
if $check_generated; then
  git diff --exit-code --stat -- "$gen_dir" \
    || { echo "generated Java code is stale: run clients/java/ci.sh and commit" >&2; exit 1; }
  if [[ -n "$(git status --porcelain --untracked-files=all -- "$gen_dir")" ]]; then
    echo "untracked generated Java files:" >&2
    git status --porcelain --untracked-files=all -- "$gen_dir" >&2
    exit 1
  fi
fi

# Compile (-Xlint:all -Werror, see pom.xml), unit tests, runtime classpath file.
# From clean class folders, so that classes of moved or removed sources never linger
# (the sources were just regenerated, so everything is recompiled anyway).
rm -rf target/surefire-reports target/classes target/test-classes
"${mvn[@]}" test dependency:build-classpath \
  -Dmdep.outputFile=target/classpath.txt -Dmdep.includeScope=runtime

python3 - <<'PY'
import glob, xml.etree.ElementTree as ET
tests = failed = skipped = 0
for path in glob.glob("target/surefire-reports/TEST-*.xml"):
    suite = ET.parse(path).getroot()
    tests += int(suite.get("tests", 0))
    failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped += int(suite.get("skipped", 0))
print(f"java: {tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
echo "clients/java/ci.sh: ok in $(( $(date +%s) - start ))s"
