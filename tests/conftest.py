"""A real tokenwire server on 127.0.0.1 (ephemeral port) with the real embedded model.

The server runs on its own thread and event loop, as it would in its own
process: tests talk to it only through gRPC, each on pytest's loop. The
start-up is tests/live_servers.py's (re-exported here: LiveServer,
serve_in_thread, stop_live_server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2_grpc, model_pb2_grpc

from service.config import ServeConfig, SimOptions
from service.server import TokenwireServer
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.stubs import GenerationStub, ModelStub
from tests.tls_certs import TOKEN_ALL, TOKEN_MODEL_ONLY, TestPki, make_test_pki

# The shared helper modules' asserts explain their failures like the tests' own (registered before
# any test module imports them; this module does not).
pytest.register_assert_rewrite(
    "tests.client_examples",
    "tests.engine_runs",
    "tests.streams",
    "tests.tokenizer_fixtures",
    "tests.trtllm_requests",
)

TEST_BATCH_SIZE = 4

# Test tiers (markers; `make test-fast` runs the unit tier, `make test` all of them):
#   unit     no server, no model forward pass, no client toolchain: the whole tier in well
#            under a minute;
#   model    the real model, in process or behind a live server on 127.0.0.1;
#   clients  the Go, TypeScript, Rust, Java and Python clients' builds and examples, grpcurl;
#   trtllm   the TensorRT-LLM adapter against its test double.
# A module is in the tier its name is listed under; an unlisted module is in "model", so a new
# module lands in the full gate until someone decides otherwise.
UNIT_MODULES = frozenset({
    "test_byte_level", "test_compose_prompts", "test_delivery", "test_detokenize", "test_draft_data",
    "test_draft_training", "test_durations", "test_fused_ops", "test_kv_cache", "test_layers", "test_logs",
    "test_request_table", "test_sampling", "test_sim_engine", "test_stall_watch", "test_stop_strings",
    "test_structured_compile",
})  # fmt: skip
CLIENT_MODULES = frozenset({
    "test_client_go", "test_client_java", "test_client_python", "test_client_rust",
    "test_client_typescript", "test_grpcurl_recipes",
})  # fmt: skip
TRTLLM_MODULES = frozenset({
    "test_trtllm_cancellation", "test_trtllm_grpc", "test_trtllm_guided", "test_trtllm_mapping",
    "test_trtllm_presets", "test_trtllm_refusals", "test_trtllm_startup", "test_trtllm_versions",
    "test_cli_trtllm",
})  # fmt: skip


def tier_of(module: str) -> str:
    if module in UNIT_MODULES:
        return "unit"
    if module in CLIENT_MODULES:
        return "clients"
    if module in TRTLLM_MODULES:
        return "trtllm"
    return "model"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        item.add_marker(getattr(pytest.mark, tier_of(module)))


@pytest.fixture(params=[1, 2, 3])
def kernel_threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """The quantized kernels' thread count for one test (restored after): test_qkernels.py and
    test_q8act_kernels.py run every kernel at each count."""
    from engines.native.matrices import kernels

    count: int = request.param
    before = kernels().threads()
    kernels().set_threads(count)
    yield count
    kernels().set_threads(before)


def server_config() -> ServeConfig:
    """The tests' server settings: ephemeral port, small batch, short default outputs."""
    return ServeConfig(port=0, max_batch_size=TEST_BATCH_SIZE, default_max_tokens=64)


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    live, thread = serve_in_thread(server_config())
    yield live
    stop_live_server(live, thread)


@dataclass(frozen=True, slots=True)
class SecureLiveServer:
    """The real model behind TLS, mTLS and bearer tokens (health open, as by default)."""

    address: str
    """``localhost:<port>``: the server certificate names localhost and 127.0.0.1."""
    server: TokenwireServer
    loop: asyncio.AbstractEventLoop
    pki: TestPki
    token_all: str
    """Every right."""
    token_model_only: str
    """Only ``model``: GetModelInfo and Tokenize, not Generate."""


def write_tokens_file(path: Path) -> Path:
    path.write_text(f"# test tokens\n{TOKEN_ALL} all\n{TOKEN_MODEL_ONLY} model\n")
    return path


@pytest.fixture(scope="session")
def secure_live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureLiveServer]:
    directory = tmp_path_factory.mktemp("secure-server")
    pki = make_test_pki(directory)
    config = replace(
        server_config(),
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca_cert,
        auth_tokens_file=write_tokens_file(directory / "tokens"),
    )
    live, thread = serve_in_thread(config)
    port = live.address.rpartition(":")[2]
    yield SecureLiveServer(f"localhost:{port}", live.server, live.loop, pki, TOKEN_ALL, TOKEN_MODEL_ONLY)
    stop_live_server(live, thread)


@pytest.fixture(scope="session")
def busy_sim_server() -> Iterator[LiveServer]:
    """The simulation engine with one slot and no queue: while one generation runs, the next is
    refused with RESOURCE_EXHAUSTED and RetryInfo (the client examples' retry demonstration)."""
    config = ServeConfig(port=0, engine="sim", max_batch_size=1, max_waiting=0, sim=SimOptions(step_ms=5.0))
    live, thread = serve_in_thread(config)
    yield live
    stop_live_server(live, thread)


@pytest.fixture
async def channel(live_server: LiveServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(live_server.address) as opened:
        yield opened


@pytest.fixture
def generation(channel: aio.Channel) -> GenerationStub:
    return generation_pb2_grpc.GenerationServiceStub(channel)


@pytest.fixture
def model(channel: aio.Channel) -> ModelStub:
    return model_pb2_grpc.ModelServiceStub(channel)
