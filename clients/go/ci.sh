#!/usr/bin/env bash
# Go client CI: install the code generators, regenerate, check formatting,
# vet, build the library and examples, run the unit tests. Needs no server.
# Needs: go (1.25+), network access to the Go module proxy on first run, and
# the repository's Python venv for buf and google/rpc/status.proto (made with
# `make .deps/googleapis/google/rpc/status.proto` when missing).
# Set GO_TEST_FLAGS (e.g. "-race") to pass extra flags to `go test`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Keep these in step with google.golang.org/protobuf and google.golang.org/grpc
# in go.mod.
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

export GOBIN="$here/.bin"
mkdir -p "$GOBIN"

step() { printf '==> %s\n' "$*"; }

# install BINARY PACKAGE VERSION: `go install`, skipped when already at VERSION.
install() {
	local have
	have="$("$GOBIN/$1" --version 2>/dev/null || true)" # "protoc-gen-go v1.36.12", "protoc-gen-go-grpc 1.6.2"
	have="${have##* }"
	if [[ -n "$have" && "v${have#v}" == "$3" ]]; then
		return
	fi
	step "go install $2@$3"
	go install "$2@$3"
}

install protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

if [[ ! -x "$root/.venv/bin/buf" || ! -f "$root/.deps/googleapis/google/rpc/status.proto" ]]; then
	step "make .deps/googleapis/google/rpc/status.proto (Python venv with buf)"
	make -C "$root" .deps/googleapis/google/rpc/status.proto
fi

step "buf generate --template clients/go/buf.gen.yaml"
(cd "$root" && PATH="$GOBIN:$root/.venv/bin:$PATH" buf generate --template clients/go/buf.gen.yaml)

cd "$here"
step "go mod tidy -diff"
go mod tidy -diff

step "gofmt -l"
unformatted="$(gofmt -l .)"
if [[ -n "$unformatted" ]]; then
	printf 'not gofmt-formatted:\n%s\n' "$unformatted" >&2
	exit 1
fi

step "go vet ./..."
go vet ./...

step "go build ./... and the examples into .bin"
go build ./...
go build -o "$GOBIN/" ./examples/stream ./examples/session ./examples/orca ./examples/structured ./examples/samples ./examples/retry

step "go test ./..."
# shellcheck disable=SC2086 # GO_TEST_FLAGS is a list of flags
go test ${GO_TEST_FLAGS:-} ./...
