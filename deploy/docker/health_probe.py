"""Exit 0 when a tokenwire server's gRPC health service reports SERVING, else 1.

Used by the image's Docker HEALTHCHECK, and usable as an exec probe where a
cluster has no native gRPC probes:

    python3 health_probe.py [HOST:PORT] [SERVICE]

SERVICE defaults to "" (the whole server); tokenwire also reports
"tokenwire.v1.GenerationService" and "tokenwire.v1.ModelService". All are
NOT_SERVING while the model loads and while the server drains.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else "127.0.0.1:50051"
    service = argv[2] if len(argv) > 2 else ""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=5
            )
        except grpc.RpcError as error:
            print(f"health {service or '(server)'}: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"health {service or '(server)'}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
