"""gRPC server reflection, both protocol versions.

grpcio-reflection only implements ``grpc.reflection.v1alpha``; newer tools
(``buf curl``, grpcurl ≥ 1.9) ask for ``grpc.reflection.v1`` first. The two
protocols are identical on the wire apart from the package name, so v1 is
served by the same servicer with the same message classes, registered under
the v1 method path. Its service is also described in the descriptor pool, so
that ``list`` shows it and ``describe`` can resolve it.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

V1ALPHA_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
V1_SERVICE = "grpc.reflection.v1.ServerReflection"
_V1ALPHA_PACKAGE = ".grpc.reflection.v1alpha."
_V1_PACKAGE = ".grpc.reflection.v1."


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    """The v1 reflection schema, derived from v1alpha's by renaming its package."""
    source = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(source)
    v1 = descriptor_pb2.FileDescriptorProto()
    v1.CopyFrom(source)
    v1.name = "grpc/reflection/v1/reflection.proto"
    v1.package = "grpc.reflection.v1"
    v1.ClearField("options")
    for message in v1.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # proto2 presence: scalars must keep it unset
                field.type_name = field.type_name.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
    for service in v1.service:
        for method in service.method:
            method.input_type = method.input_type.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
            method.output_type = method.output_type.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
    return v1


class _MethodAwarePool:
    """The default pool, also resolving method names (``Service.Method``) to their file.

    grpcurl resolves ``describe pkg.Service.Method`` with file_containing_symbol;
    the upb pool only finds services and types by that call.
    """

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            return self._pool.FindMethodByName(symbol).containing_service.file

    def __getattr__(self, name: str) -> object:
        return getattr(self._pool, name)


def _ensure_v1_in_pool() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1_SERVICE)
    except KeyError:
        pool.Add(_v1_file())


def enable_reflection(server: aio.Server, service_names: Sequence[str]) -> None:
    """Serve reflection (v1 and v1alpha) for ``service_names`` plus the reflection services."""
    _ensure_v1_in_pool()
    names = (*service_names, V1_SERVICE, V1ALPHA_SERVICE)
    pool = _MethodAwarePool(descriptor_pool.Default())
    servicer = ReflectionServicer(names, pool=pool)  # duck-typed: the servicer only calls Find* methods
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                V1ALPHA_SERVICE, {"ServerReflectionInfo": _handler(servicer)}
            ),
            grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": _handler(servicer)}),
        )
    )


def _handler(
    servicer: ReflectionServicer,
) -> grpc.RpcMethodHandler[reflection_pb2.ServerReflectionRequest, reflection_pb2.ServerReflectionResponse]:
    return grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
