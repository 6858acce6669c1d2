"""Message classes for push.proto, built from a descriptor at import time.

Why not protoc output: protoc is not a runtime or build dependency of this project, and the
four messages are small enough to describe by hand. The descriptor below mirrors push.proto
field for field; tests decode what it encodes with an independent wire-format reader.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    fd = descriptor_pb2.FileDescriptorProto(
        name="redis_shipper/logproto/push.proto",
        package="logproto",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )

    def msg(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        m = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    msg("LabelPairAdapter", [("name", 1, _F.TYPE_STRING, opt, None), ("value", 2, _F.TYPE_STRING, opt, None)])
    msg("EntryAdapter", [
        ("timestamp", 1, _F.TYPE_MESSAGE, opt, ".google.protobuf.Timestamp"),
        ("line", 2, _F.TYPE_STRING, opt, None),
        ("structuredMetadata", 3, _F.TYPE_MESSAGE, rep, ".logproto.LabelPairAdapter"),
    ])
    msg("StreamAdapter", [
        ("labels", 1, _F.TYPE_STRING, opt, None),
        ("entries", 2, _F.TYPE_MESSAGE, rep, ".logproto.EntryAdapter"),
    ])
    msg("PushRequest", [("streams", 1, _F.TYPE_MESSAGE, rep, ".logproto.StreamAdapter")])
    pool.Add(fd)
    return pool


_POOL = _build()
PushRequest = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("logproto.PushRequest"))
StreamAdapter = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("logproto.StreamAdapter"))
EntryAdapter = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("logproto.EntryAdapter"))
LabelPairAdapter = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("logproto.LabelPairAdapter"))
