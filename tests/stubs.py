"""Names for the async stub types, which exist only for the type checker."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from tokenwire.v1 import generation_pb2_grpc, model_pb2_grpc

    GenerationStub: TypeAlias = generation_pb2_grpc.GenerationServiceAsyncStub
    ModelStub: TypeAlias = model_pb2_grpc.ModelServiceAsyncStub
else:
    GenerationStub = "GenerationServiceAsyncStub"
    ModelStub = "ModelServiceAsyncStub"
