"""The standard gRPC health service's Check and Watch, as typed callables on a channel."""

from __future__ import annotations

from grpc import aio
from grpc_health.v1 import health_pb2


def health_check(
    channel: aio.Channel,
) -> aio.UnaryUnaryMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]:
    # Typed by hand: the typeshed stub of grpc_health's HealthStub declares no methods.
    return channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )


def health_watch(
    channel: aio.Channel,
) -> aio.UnaryStreamMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]:
    return channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
