#!/usr/bin/env bash
# Java client CI: build with all lint warnings as errors, run the unit tests
# (in-process fake server; no tokenwire server needed), and write
# target/classpath.txt for running the examples, which src/examples/java holds
# and the test compile builds into target/test-classes (so the library jar has
# none):
#   java -cp clients/java/target/classes:clients/java/target/test-classes:$(cat clients/java/target/classpath.txt) \
#     dev.tokenwire.examples.StreamExample
# The Maven build itself generates the tokenwire.v1 classes from ../../protos
# into target/generated-sources (protoc and protoc-gen-grpc-java from Maven
# Central, see pom.xml): nothing generated is committed, so there is nothing to
# check against git.
# Needs: java 17+, mvn and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mvn=(mvn -B -q --no-transfer-progress -Dstyle.color=never)

start=$(date +%s)
cd "$here"

# Generate, compile (-Xlint:all -Werror, see pom.xml), unit tests, runtime classpath
# file. From clean class folders, so that classes of moved or removed sources (or of
# messages removed from protos/) never linger; the protobuf plugin clears
# target/generated-sources itself.
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
