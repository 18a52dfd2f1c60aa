"""What an operation touches: schema coordinates, root-field arguments, depth and cost.

Computed with graphql-core from the validated document (fragments, inline fragments and
variables resolved), so policies reason about schema coordinates and never parse query text.
``@skip``/``@include`` are ignored on purpose: a coordinate that might be read is decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Undefined,
    Visitor,
    get_named_type,
    value_from_ast_untyped,
    visit,
)

from schema.per_document import PerDocument

JSONValue = object


@dataclass(slots=True)
class OperationSummary:
    """The normalised view of an operation that policies and the audit trail read."""

    type: str
    name: str | None
    coordinates: list[str] = field(default_factory=list)
    #: Arguments per coordinate, one entry per occurrence (aliases and repeats stay distinct).
    args: dict[str, list[dict[str, JSONValue]]] = field(default_factory=dict)
    depth: int = 0


@dataclass(frozen=True, slots=True)
class _Shape:
    """What an operation touches that depends only on the document: the summary without argument
    values, and the argument nodes per coordinate in document order (valued per request)."""

    type: str
    name: str | None
    operation: OperationDefinitionNode | None
    coordinates: tuple[str, ...]
    depth: int
    arg_sites: tuple[tuple[str, tuple[ArgumentNode, ...]], ...]


class _Collector(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.coordinates: list[str] = []
        self.arg_sites: list[tuple[str, tuple[ArgumentNode, ...]]] = []
        self.seen: set[str] = set()
        self.level = 0
        self.depth = 0

    def enter_field(self, node: FieldNode, *_: object) -> None:
        self.level += 1
        self.depth = max(self.depth, self.level)
        parent = self.type_info.get_parent_type()
        if parent is None or node.name.value.startswith("__"):
            return
        coordinate = f"{get_named_type(parent).name}.{node.name.value}"
        if coordinate not in self.seen:
            self.seen.add(coordinate)
            self.coordinates.append(coordinate)
        if node.arguments:
            self.arg_sites.append((coordinate, tuple(node.arguments)))

    def leave_field(self, *_: object) -> None:
        self.level -= 1


def _defined(value: object) -> object:
    """Drop omitted variables (``Undefined``) at any depth; what remains is plain JSON."""
    if isinstance(value, dict):
        return {k: _defined(v) for k, v in value.items() if v is not Undefined}
    if isinstance(value, list):
        return [_defined(v) for v in value if v is not Undefined]
    return value


def effective_variables(
    operation: OperationDefinitionNode | None, given: Mapping[str, object] | None
) -> dict[str, object]:
    """The request's variables plus the defaults of those it omitted, as JSON values."""
    given = given or {}
    out: dict[str, object] = {}
    for definition in (operation.variable_definitions or ()) if operation else ():
        name = definition.variable.name.value
        if name in given:
            out[name] = given[name]
        elif definition.default_value is not None:
            out[name] = value_from_ast_untyped(definition.default_value)
    return out


def _shape(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> _Shape:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next(
        (o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)),
        operations[0] if operations else None,
    )
    type_info = TypeInfo(schema)
    collector = _Collector(type_info)
    definitions = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    for definition in ([chosen] if chosen else []) + definitions:
        visit(definition, TypeInfoVisitor(type_info, collector))
    return _Shape(
        type=chosen.operation.value if chosen else "query",
        name=chosen.name.value if chosen and chosen.name else None,
        operation=chosen,
        coordinates=tuple(collector.coordinates),
        depth=collector.depth,
        arg_sites=tuple(collector.arg_sites),
    )


# The walk over a document is done once per (schema, document, operation name).
_SHAPES: PerDocument[_Shape] = PerDocument(512)


def summarize(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, object] | None,
) -> OperationSummary:
    """Summarise the operation that will execute (plus the fragments it may spread).

    The walk over the document (coordinates, depth, where arguments are) is done once per
    document; argument values come from this request's variables every time.
    """
    shape = _SHAPES.get(schema, document, operation_name, lambda: _shape(schema, document, operation_name))
    values = effective_variables(shape.operation, variables)
    summary = OperationSummary(type=shape.type, name=shape.name, coordinates=list(shape.coordinates), depth=shape.depth)
    for coordinate, arguments in shape.arg_sites:
        args = {arg.name.value: _defined(value_from_ast_untyped(arg.value, values)) for arg in arguments}
        summary.args.setdefault(coordinate, []).append({k: v for k, v in args.items() if v is not Undefined})
    return summary


__all__ = ["OperationSummary", "effective_variables", "summarize"]
