"""Which connector owns each schema coordinate, and how its values are classified.

Built once per schema from the ``@classification`` directives and the connectors' contributions.
Coordinates without an owner (connection wrappers, page info, ``__typename``) are structural:
they carry no department data and need no decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import StrawberryObjectDefinition

from schema.directives import Classification


@dataclass(frozen=True, slots=True)
class FieldMeta:
    """One schema coordinate (``Type.field``) owned by a connector."""

    coordinate: str
    connector: str
    resource_type: str  # the (connector, type) decision that governs this coordinate
    python_name: str
    level: int
    pi: str | None
    #: Coordinates the resolver also reads (``classified(reads=...)``); decided with this one.
    reads: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class FieldCatalog:
    """All classified coordinates of a schema, indexed for the request path.

    Compared and hashed by identity: one catalog per built schema, and what is cached per catalog
    (``schema.policy.grouped``) belongs to that one."""

    by_coordinate: Mapping[str, FieldMeta]

    def get(self, coordinate: str) -> FieldMeta | None:
        """The metadata of a coordinate, or None when it is structural."""
        return self.by_coordinate.get(coordinate)

    def of_type(self, resource_type: str) -> Iterator[FieldMeta]:
        """Every coordinate governed by the decision for ``resource_type``."""
        return (m for m in self.by_coordinate.values() if m.resource_type == resource_type)


def _reads(value: object) -> tuple[str, ...]:
    return tuple(str(c) for c in value) if isinstance(value, tuple | list) else ()


def field_metas(connector: str, type_name: str, definition: StrawberryObjectDefinition) -> Iterator[FieldMeta]:
    """The metadata of each classified field a connector contributed to ``type_name``."""
    names = NameConverter()
    for f in definition.fields:
        for directive in f.directives:
            if isinstance(directive, Classification):
                metadata: dict[str, object] = dict(f.metadata or {})
                resource = metadata.get("resource") or type_name
                yield FieldMeta(
                    coordinate=f"{type_name}.{names.get_graphql_name(f)}",
                    connector=connector,
                    resource_type=str(resource),
                    python_name=f.python_name,
                    level=directive.level.value,
                    pi=directive.pi.value if directive.pi else None,
                    reads=_reads(metadata.get("reads")),
                )


__all__ = ["FieldCatalog", "FieldMeta", "field_metas"]
