"""Protobuf message classes declared in Python: the subset of a foreign .proto that a reader needs.

A schema is a table (message name -> fields, enum name -> values) turned into a descriptor with
`descriptor_pb2` and into message classes with `message_factory`, so that pafpose reads
TensorFlow GraphDefs and Caffe nets with the `protobuf` package alone, without their .proto files
or generated code. Fields not declared are skipped by the binary parser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["MANY", "ONE", "Field", "Schema"]

_F = descriptor_pb2.FieldDescriptorProto
ONE, MANY = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_SCALARS = {"int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64, "uint32": _F.TYPE_UINT32,
            "uint64": _F.TYPE_UINT64, "float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE,
            "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES}


@dataclass(frozen=True)
class Field:
    """One field: name, number, label (ONE / MANY), type (a scalar, message or enum name)."""

    name: str
    number: int
    label: int
    kind: str
    default: str | None = None  # proto2 default, as protoc writes it (text)
    packed: bool = False


FieldSpec = Field | tuple[str, int, int, str]


@dataclass(frozen=True)
class Schema:
    """Messages and enums of one .proto file; `classes()` builds their Python classes.

    Nested names use dots ("AttrValue.ListValue"); `map_entries` are messages that encode a
    map field; `oneofs` puts all fields of a message into one oneof of that name.
    """

    package: str
    syntax: str  # "proto2" or "proto3"
    messages: Mapping[str, Sequence[FieldSpec]]
    enums: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    map_entries: frozenset[str] = frozenset()
    oneofs: Mapping[str, str] = field(default_factory=dict)

    def _type_of(self, f: Field, proto: descriptor_pb2.FieldDescriptorProto) -> None:
        if f.kind in _SCALARS:
            proto.type = _SCALARS[f.kind]
        elif f.kind in self.enums:
            proto.type, proto.type_name = _F.TYPE_ENUM, f".{self.package}.{f.kind}"
        elif f.kind in self.messages:
            proto.type, proto.type_name = _F.TYPE_MESSAGE, f".{self.package}.{f.kind}"
        else:
            raise ValueError(f"{self.package}: unknown field type {f.kind!r} of {f.name!r}")

    def file_descriptor(self) -> descriptor_pb2.FileDescriptorProto:
        """The FileDescriptorProto of this schema."""
        file = descriptor_pb2.FileDescriptorProto(
            name=f"pafpose/{self.package.replace('.', '_')}.proto", package=self.package,
            syntax=self.syntax)
        protos: dict[str, descriptor_pb2.DescriptorProto] = {}
        for full in sorted(self.messages, key=lambda n: n.count(".")):  # parents first
            parent, _, leaf = full.rpartition(".")
            protos[full] = (protos[parent].nested_type if parent else file.message_type).add(
                name=leaf)
        for full, values in self.enums.items():
            enum = file.enum_type.add(name=full)
            for name, number in values.items():
                enum.value.add(name=name, number=number)
        for full, fields in self.messages.items():
            proto = protos[full]
            proto.options.map_entry = full in self.map_entries
            oneof = self.oneofs.get(full)
            if oneof:
                proto.oneof_decl.add(name=oneof)
            for spec in fields:
                f = spec if isinstance(spec, Field) else Field(*spec)
                fp = proto.field.add(name=f.name, number=f.number, label=f.label)
                self._type_of(f, fp)
                if f.default is not None:
                    fp.default_value = f.default
                if f.packed:
                    fp.options.packed = True
                if oneof:
                    fp.oneof_index = 0
        return file

    def classes(self, *names: str) -> tuple[type, ...]:
        """The message classes of the named (top-level or dotted) messages."""
        pool = descriptor_pool.DescriptorPool()
        pool.Add(self.file_descriptor())
        return tuple(
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{self.package}.{n}"))
            for n in names)
