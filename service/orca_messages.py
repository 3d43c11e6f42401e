"""The two ORCA messages tokenwire speaks, defined here by their wire format.

``xds.data.orca.v3.OrcaLoadReport`` and ``xds.service.orca.v3.OrcaLoadReportRequest``
are built at import from a descriptor written in this file (the field numbers
and types of the xDS definitions), in a descriptor pool of their own, with the
protobuf runtime we already use. The PyPI package that ships them (xds-protos)
is not a dependency on purpose: it also installs its own older copies of
``google/rpc``, ``google/api`` and ``opentelemetry/proto``, which overwrite the
packages gRPC status and the OTLP exporter need.

Wire compatibility is checked against an independent implementation: grpc-go's
``orca`` package (with cncf/xds's Go messages) reads these reports in
``tests/test_client_go.py``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="tokenwire/orca_wire.proto",
        package="xds.data.orca.v3",
        syntax="proto3",
        dependency=["google/protobuf/duration.proto"],
    )
    report = proto.message_type.add(name="OrcaLoadReport")
    for name, number in (("cpu_utilization", 1), ("mem_utilization", 2), ("rps_fractional", 6), ("eps", 7),
                         ("application_utilization", 9)):  # fmt: skip
        report.field.add(name=name, number=number, type=_F.TYPE_DOUBLE, label=_F.LABEL_OPTIONAL)
    report.field.add(name="rps", number=3, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    for name, number, entry in (
        ("request_cost", 4, "RequestCostEntry"),
        ("utilization", 5, "UtilizationEntry"),
        ("named_metrics", 8, "NamedMetricsEntry"),
    ):
        nested = report.nested_type.add(name=entry)
        nested.options.map_entry = True
        nested.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        nested.field.add(name="value", number=2, type=_F.TYPE_DOUBLE, label=_F.LABEL_OPTIONAL)
        report.field.add(
            name=name,
            number=number,
            type=_F.TYPE_MESSAGE,
            label=_F.LABEL_REPEATED,
            type_name=f".xds.data.orca.v3.OrcaLoadReport.{entry}",
        )
    return proto


def _request_file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="tokenwire/orca_service_wire.proto",
        package="xds.service.orca.v3",
        syntax="proto3",
        dependency=["google/protobuf/duration.proto"],
    )
    request = proto.message_type.add(name="OrcaLoadReportRequest")
    request.field.add(
        name="report_interval",
        number=1,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_OPTIONAL,
        type_name=".google.protobuf.Duration",
    )
    request.field.add(name="request_cost_names", number=2, type=_F.TYPE_STRING, label=_F.LABEL_REPEATED)
    return proto


_pool = descriptor_pool.DescriptorPool()
_pool.AddSerializedFile(duration_pb2.DESCRIPTOR.serialized_pb)
_pool.Add(_file())
_pool.Add(_request_file())

# Message classes made at run time: their fields are Any to a type checker. They stay in
# service.orca, behind functions with typed signatures.
OrcaLoadReport: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("xds.data.orca.v3.OrcaLoadReport")
)
OrcaLoadReportRequest: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("xds.service.orca.v3.OrcaLoadReportRequest")
)
