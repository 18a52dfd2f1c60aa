"""Subgraph mode: one connector's part of the graph as an Apollo Federation v2 subgraph.

``build_subgraph(connectors, name, limits)`` composes the schema a router (Apollo Router, Apollo
Gateway, Hive Gateway) composes with the other subgraphs into the graph ``build_schema`` serves
in one process. Every enabled connector's contribution is read to know who owns each shared
entity, but only connector ``name`` is served (``"gateway"`` serves the gateway's own fields):

- **Entities** are the shared types (``SchemaContribution.entity_fields`` and ``owns``). Each is
  ``@key``-ed by the argument of its root lookup (``Query.enterprise(uscc)``,
  ``Query.person(idNumber)``) or else by its key field (``District.adcode``). The owner's
  subgraph serves the owner's fields; a contributing subgraph serves the key and its link fields.
- **References** (``_entities``) are lookups by key: each ``__typename`` asked for adds its
  lookup coordinate (``Query.enterprise``, ``District.adcode``) to the operation, so the same
  policy decisions are made as for the root lookup. The owner resolves a reference through the
  same batched loader, row filter and masking as ``Query.enterprise``: a key the principal may
  not see and a key that does not exist both resolve to ``null``. A contributing subgraph cannot
  test the owner's row filter; it answers a reference carrying the key only, under the owner's
  allow/deny, and its own link fields are decided and filtered by their own decisions.
- **Links to another subgraph's entity** (``CreditRecord.enterprise``) return such a reference,
  which the router resolves at the owner, under the owner's decision.
- A connector's own types may carry federation directives (``strawberry.federation.type(keys=...)``
  with a ``resolve_reference`` that uses the ``resolvers`` loaders); a reference to one is read
  as its first key field (``Product.id``). ``tests/federation/products.py`` passes Apollo's
  compatibility suite that way.
- Value types are ``@shareable`` (``PageInfo`` appears in several subgraphs); ``@classification``
  stays in the SDL, after the federation directives.
- ``FederatedTracing`` answers ``apollo-federation-include-trace: ftv1`` with an Apollo ``Trace``.

Every subgraph verifies the token, decides and audits itself, exactly like the combined gateway.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import functools
import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import strawberry
from graphql import (
    ConstArgumentNode,
    ConstDirectiveNode,
    ConstListValueNode,
    DocumentNode,
    FieldDefinitionNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLScalarType,
    InlineFragmentNode,
    InterfaceTypeDefinitionNode,
    ListValueNode,
    NameNode,
    Node,
    ObjectTypeDefinitionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    TypeDefinitionNode,
    get_named_type,
    parse,
    print_ast,
    visit,
)
from graphql.language import Visitor
from strawberry.extensions import (
    SchemaExtension,
)
from strawberry.federation import Schema as FederationSchema
from strawberry.federation.schema_directives import Key
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import create_type, merge_types
from strawberry.types import Info
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField
from strawberry.types.private import is_private

from connectors.base import Connector, SchemaContribution
from connectors.errors import ConnectorConfigError
from resolvers import context_of, load_entity
from resolvers.errors import coded_error
from resolvers.loaders import check_coordinate
from schema import entities
from schema.acyclic import AcyclicExecutionContext
from schema.builder import BuiltSchema, GatewayQuery, _catalog, _compose_entity, _owners
from schema.execution import CompiledExecutionContext
from schema.fieldmeta import FieldMeta, field_metas
from schema.gate import gate
from schema.limits import Limits
from schema.lookups import ENTITY_QUERIES
from schema.operation import OperationSummary
from schema.policy import PolicyExtension
from schema.scalars import SCALAR_MAP

#: The subgraph serving the gateway's own fields (``gatewayVersion``, ``policyExplain``, ``auditTrail``).
GATEWAY_SUBGRAPH = "gateway"
ENTITIES_COORDINATE = "Query._entities"
FEDERATION_URL = "https://specs.apollo.dev/federation/"
N = TypeVar("N", bound=Node)
FEDERATION_TYPES = frozenset({"_Any", "_Entity", "_Service", "_FieldSet", "link__Import", "link__Purpose"})


class SubgraphError(ConnectorConfigError):
    """A subgraph that cannot be built (unknown name, an entity without a usable key)."""


@dataclass(frozen=True, slots=True)
class EntityKey:
    """How references to a shared entity are keyed and looked up."""

    entity: str
    field: str  # GraphQL name of the key field, e.g. ``idNumber``
    python_name: str  # its Python name on the entity, e.g. ``id_number``
    lookup: str  # the coordinate a reference is read as: ``Query.person`` or ``District.adcode``
    owner: str | None


class SubgraphSchema(FederationSchema):
    """strawberry's federation schema, without per-error stack-trace logging (see ``CityGraphSchema``)."""

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None


# ---------------------------------------------------------------------------------------------
# Policy: a reference is a lookup by key
# ---------------------------------------------------------------------------------------------


def _referenced_types(document: DocumentNode, summary: OperationSummary) -> set[str]:
    """Types an ``_entities`` operation may resolve: its representations' ``__typename``s and fragments."""
    names: set[str] = set()
    for args in summary.args.get(ENTITIES_COORDINATE, []):
        given = args.get("representations")
        for representation in given if isinstance(given, list) else []:
            if isinstance(representation, Mapping) and isinstance(representation.get("__typename"), str):
                names.add(representation["__typename"])

    class Conditions(Visitor):
        def enter_inline_fragment(self, node: InlineFragmentNode, *_: object) -> None:
            if node.type_condition is not None:
                names.add(node.type_condition.name.value)

        def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: object) -> None:
            names.add(node.type_condition.name.value)

    visit(document, Conditions())
    return names


def _policy_extension(lookups: Mapping[str, str]) -> type[PolicyExtension]:
    class SubgraphPolicy(PolicyExtension):
        """``PolicyExtension`` reading every entity reference as its root lookup by key."""

        def summarize(self) -> OperationSummary:
            summary = super().summarize()
            document = self.execution_context.graphql_document
            if ENTITIES_COORDINATE in summary.coordinates and document is not None:
                for name in sorted(_referenced_types(document, summary)):
                    lookup = lookups.get(name)
                    if lookup is not None and lookup not in summary.coordinates:
                        summary.coordinates.append(lookup)
            return summary

    return SubgraphPolicy


# ---------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------


def _graphql_name(f: StrawberryField) -> str:
    return NameConverter().get_graphql_name(f)


def _entity_key(
    entity: str, owner: str | None, mixins: list[tuple[str, type]], contributions: Mapping[str, SchemaContribution]
) -> EntityKey:
    fields = {_graphql_name(f): f for _, mixin in mixins for f in get_object_definition(mixin, strict=True).fields}
    query = ENTITY_QUERIES.get(entity)
    if query is not None:
        lookup = get_object_definition(query, strict=True).fields[0]
        name = NameConverter().from_argument(lookup.arguments[0]) if lookup.arguments else ""
        if name in fields:
            return EntityKey(entity, name, fields[name].python_name, f"Query.{_graphql_name(lookup)}", owner)
    declared = contributions[owner].keys.get(entity) if owner else None
    for name, f in fields.items():
        if f.python_name == declared:
            return EntityKey(entity, name, f.python_name, f"{entity}.{name}", owner)
    raise SubgraphError(f"{entity} has no key field in the schema: declare its key in SchemaContribution.keys")


def _reference(cls: type, key: EntityKey, value: object) -> object:
    """An entity carrying its key only: what a subgraph that does not own the entity can answer."""
    obj: object = object.__new__(cls)
    obj.__dict__[key.python_name] = value
    return obj


def _key_value(info: Info, key: EntityKey, representation: Mapping[str, object]) -> object:
    """The representation's key, validated by the key field's scalar (``BAD_USER_INPUT`` if bad)."""
    value = representation.get(key.field)
    object_type = info._raw_info.schema.get_type(key.entity)
    field_type = get_named_type(object_type.fields[key.field].type)  # type: ignore[union-attr]
    if not isinstance(value, str):
        raise coded_error("BAD_USER_INPUT", f"A {key.entity} reference needs its key {key.field!r} as a string.")
    if isinstance(field_type, GraphQLScalarType):
        try:
            return field_type.parse_value(value)
        except (GraphQLError, ValueError, TypeError) as exc:
            raise coded_error("BAD_USER_INPUT", f"{key.entity}.{key.field}: {exc}") from exc
    return value


def _resolver(key: EntityKey, local: bool) -> Callable[..., Any]:
    async def resolve_reference(cls: type, info: Info, **representation: object) -> object | None:
        ctx = context_of(info)
        value = _key_value(info, key, representation)
        if local:
            return await load_entity(ctx, key.entity, str(value), key.lookup)
        if key.owner is None:
            raise coded_error("FORBIDDEN", f"No connector serves {key.entity} here.")
        check_coordinate(ctx, key.owner, key.entity, key.lookup)
        return _reference(cls, key, value)

    return resolve_reference


def _entity_type(
    name: str,
    served: str,
    key: EntityKey,
    own: list[StrawberryField],
    key_field: StrawberryField,
) -> type:
    """The entity class of subgraph ``served``: the owner's fields, or the key and link fields."""
    local = key.owner == served
    public = [f for f in own if not is_private(f.type)]
    fields = [f for f in public if local or f.base_resolver is not None or f.python_name == key.python_name]
    if not any(f.python_name == key.python_name for f in fields):
        fields.insert(0, key_field)
    cls = create_type(
        name,
        [copy.copy(f) for f in fields],
        description=entities.DESCRIPTIONS.get(name),
        directives=[Key(fields=key.field, resolvable=True)],  # type: ignore[arg-type]
    )
    cls.resolve_reference = classmethod(_resolver(key, local))  # type: ignore[attr-defined]
    return cls


# ---------------------------------------------------------------------------------------------
# SDL: value types shareable
# ---------------------------------------------------------------------------------------------


def _shareable_sdl(sdl: str, entity_names: set[str]) -> str:
    """The SDL the router composes: value object types ``@shareable``, federation plumbing left out."""
    document = parse(sdl)
    definitions: list[Node] = []
    for node in document.definitions:
        if isinstance(node, TypeDefinitionNode) and node.name.value in FEDERATION_TYPES:
            continue  # the router knows them; Apollo's subgraph libraries leave them out too
        if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            node = _with(node, fields=tuple(_classification_last(f) for f in node.fields or ()))
        if isinstance(node, ObjectTypeDefinitionNode) and node.name.value == "Query":
            fields = tuple(f for f in node.fields or () if f.name.value not in ("_entities", "_service"))
            node = ObjectTypeDefinitionNode(
                description=node.description,
                name=node.name,
                interfaces=node.interfaces,
                directives=node.directives,
                fields=fields,
            )
        elif (
            isinstance(node, ObjectTypeDefinitionNode)
            and node.name.value not in entity_names
            and node.name.value not in ("Query", "Mutation", "Subscription", "_Service")
            and not any(d.name.value in ("key", "shareable") for d in node.directives or ())
        ):
            directive = ConstDirectiveNode(name=NameNode(value="shareable"), arguments=())
            node = ObjectTypeDefinitionNode(
                description=node.description,
                name=node.name,
                interfaces=node.interfaces,
                directives=(*(node.directives or ()), directive),
                fields=node.fields,
            )
        elif isinstance(node, SchemaDefinitionNode | SchemaExtensionNode):
            definitions.append(_federation_link(node))
            continue
        definitions.append(node)
    if not any(isinstance(n, SchemaDefinitionNode | SchemaExtensionNode) for n in definitions):
        definitions.insert(0, _link_node())
    return print_ast(DocumentNode(definitions=tuple(definitions)))  # type: ignore[arg-type]


def _classification_last(node: FieldDefinitionNode) -> FieldDefinitionNode:
    """Federation directives first, ``@classification`` (CityGraph's own metadata) last."""
    directives = node.directives or ()
    ordered = sorted(directives, key=lambda d: d.name.value == "classification")
    if list(ordered) == list(directives):
        return node
    return _with(node, directives=tuple(ordered))


def _with(node: N, **changes: object) -> N:
    """A copy of an AST node with some attributes replaced (graphql-core's nodes are frozen)."""
    values = {key: getattr(node, key) for key in node.keys}
    values.update(changes)
    return type(node)(**values)


def _federation_link(node: SchemaDefinitionNode | SchemaExtensionNode) -> SchemaDefinitionNode | SchemaExtensionNode:
    """The schema node with ``@shareable`` (and ``@key``) imported through the federation ``@link``."""
    directives = []
    found = False
    for directive in node.directives or ():
        url = next((a.value for a in directive.arguments or () if a.name.value == "url"), None)
        if directive.name.value == "link" and isinstance(url, StringValueNode) and url.value.startswith(FEDERATION_URL):
            found = True
            arguments = []
            for argument in directive.arguments or ():
                if argument.name.value == "import" and isinstance(argument.value, ListValueNode):
                    names = {v.value for v in argument.value.values if isinstance(v, StringValueNode)}
                    argument = ConstArgumentNode(name=argument.name, value=_imports(names | {"@key", "@shareable"}))
                arguments.append(argument)
            directive = ConstDirectiveNode(name=directive.name, arguments=tuple(arguments))
        directives.append(directive)
    if not found:
        directives.extend(_link_node().directives or ())
    if isinstance(node, SchemaDefinitionNode):
        return SchemaDefinitionNode(
            description=node.description, directives=tuple(directives), operation_types=node.operation_types
        )
    return SchemaExtensionNode(directives=tuple(directives), operation_types=node.operation_types)


def _imports(names: set[str]) -> ConstListValueNode:
    return ConstListValueNode(values=tuple(StringValueNode(value=n) for n in sorted(names)))


def _link_node() -> SchemaExtensionNode:
    """``extend schema @link(...)`` for a subgraph whose types use no federation directive of their own."""
    link = ConstDirectiveNode(
        name=NameNode(value="link"),
        arguments=(
            ConstArgumentNode(name=NameNode(value="url"), value=StringValueNode(value=FEDERATION_URL + "v2.3")),
            ConstArgumentNode(name=NameNode(value="import"), value=_imports({"@key", "@shareable"})),
        ),
    )
    return SchemaExtensionNode(directives=(link,), operation_types=())


# ---------------------------------------------------------------------------------------------
# Federated tracing (ftv1)
# ---------------------------------------------------------------------------------------------

#: Set by the subgraph's HTTP route when the router sends ``apollo-federation-include-trace: ftv1``.
TRACE_REQUESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("citygraph_ftv1", default=False)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _uint(number: int, value: int) -> bytes:
    return _tag(number, 0) + _varint(value) if value else b""


def _bytes(number: int, value: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(value)) + value


def _text(number: int, value: str) -> bytes:
    return _bytes(number, value.encode()) if value else b""


def _timestamp(number: int, ns: int) -> bytes:
    return _bytes(number, _uint(1, ns // 1_000_000_000) + _uint(2, ns % 1_000_000_000))


@dataclass(slots=True)
class _TraceNode:
    """One resolved field of an Apollo ``Trace.Node`` (reports.proto)."""

    response_name: str | None = None
    index: int | None = None
    type: str = ""
    parent_type: str = ""
    start_ns: int = 0
    end_ns: int = 0
    errors: list[str] | None = None
    children: dict[str | int, _TraceNode] | None = None

    def child(self, key: str | int) -> _TraceNode:
        if self.children is None:
            self.children = {}
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = _TraceNode(
                response_name=key if isinstance(key, str) else None, index=key if isinstance(key, int) else None
            )
        return found

    def encode(self) -> bytes:
        out = b""
        if self.response_name is not None:
            out += _text(1, self.response_name)
        if self.index is not None:
            out += _uint(2, self.index) if self.index else _tag(2, 0) + _varint(0)
        out += _text(3, self.type) + _uint(8, self.start_ns) + _uint(9, self.end_ns)
        for message in self.errors or ():
            out += _bytes(11, _text(1, message))
        for child in (self.children or {}).values():
            out += _bytes(12, child.encode())
        out += _text(13, self.parent_type)
        return out


class FederatedTracing(SchemaExtension):
    """Adds ``extensions.ftv1`` (a base64 Apollo ``Trace``) when the router asks for it.

    Field timings are relative to the start of the operation, as the router expects.
    """

    def on_execute(self) -> Iterator[None]:
        self._wanted = TRACE_REQUESTED.get()
        self._start_wall = time.time_ns()
        self._start = time.perf_counter_ns()
        self._root = _TraceNode()
        yield
        self._end_wall = time.time_ns()
        self._duration = time.perf_counter_ns() - self._start

    async def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        if not getattr(self, "_wanted", False):
            result = _next(root, info, *args, **kwargs)
            return await result if _awaitable(result) else result
        node = self._root
        for key in info.path.as_list():
            node = node.child(key)
        node.type = str(info.return_type)
        node.parent_type = str(info.parent_type)
        node.start_ns = time.perf_counter_ns() - self._start
        try:
            result = _next(root, info, *args, **kwargs)
            if _awaitable(result):
                result = await result
        except GraphQLError as error:
            node.errors = [error.message]
            raise
        finally:
            node.end_ns = time.perf_counter_ns() - self._start
        return result

    def get_results(self) -> dict[str, Any]:
        if not getattr(self, "_wanted", False) or not hasattr(self, "_duration"):
            return {}
        trace = (
            _timestamp(3, self._end_wall)
            + _timestamp(4, self._start_wall)
            + _uint(11, self._duration)
            + _bytes(14, self._root.encode())
        )
        return {"ftv1": base64.b64encode(trace).decode()}


def _awaitable(value: object) -> bool:
    return inspect.isawaitable(value)


# ---------------------------------------------------------------------------------------------
# The subgraph
# ---------------------------------------------------------------------------------------------


@strawberry.type(name="_Service")
class ServiceSDL:
    """``_service``: the subgraph's SDL with its federation directives, for the router."""

    sdl: str


@dataclass(frozen=True, slots=True)
class Subgraph:
    """A built subgraph: the schema, its SDL and the entity keys."""

    built: BuiltSchema
    keys: Mapping[str, EntityKey]
    sdl: str
    #: Entities another subgraph owns -> a reference by key (``Runtime.references``).
    references: Mapping[str, Callable[[str], object]]


def subgraph_names(connectors: Mapping[str, Connector]) -> list[str]:
    """The subgraphs a configuration splits into: one per enabled connector, plus ``gateway``."""
    return [*connectors, GATEWAY_SUBGRAPH]


def _own_lookups(contribution: SchemaContribution) -> dict[str, str]:
    """A connector's own ``@key``-ed types: a reference reads the first field of the first key."""
    lookups: dict[str, str] = {}
    for cls in contribution.types:
        definition = get_object_definition(cls, strict=True)
        for directive in definition.directives or ():
            if isinstance(directive, Key):
                first = str(directive.fields).replace("{", " ").split()[0]
                lookups.setdefault(definition.name, f"{definition.name}.{first}")
    return lookups


def check_subgraph_name(connectors: Mapping[str, Connector], name: str) -> None:
    """Raise ``SubgraphError`` unless ``name`` is an enabled connector or ``gateway``."""
    if name not in connectors and name != GATEWAY_SUBGRAPH:
        choices = ", ".join(subgraph_names(connectors))
        raise SubgraphError(f"no subgraph named {name!r}; this configuration has: {choices}")


def build_subgraph(
    connectors: Mapping[str, Connector],
    name: str,
    limits: Limits,
    *,
    introspection: bool = True,
    compiled: bool = True,
) -> Subgraph:
    """Build subgraph ``name`` of the graph ``connectors`` compose (see the module docstring).

    ``connectors`` are every enabled connector (unopened is fine: only ``schema()`` is read);
    raises ``SubgraphError`` for a name that is neither an enabled connector nor ``gateway``.
    """
    from schema.officers import GATEWAY, OFFICER_FIELDS

    check_subgraph_name(connectors, name)
    contributions = {n: connector.schema() for n, connector in connectors.items()}
    contributions[GATEWAY] = OFFICER_FIELDS
    owners = _owners(contributions)
    mixins: dict[str, list[tuple[str, type]]] = {}
    for connector, contribution in contributions.items():
        for entity, mixin in contribution.entity_fields.items():
            mixins.setdefault(entity, []).append((connector, mixin))
    served = contributions[name]
    keys = {e: _entity_key(e, owners.get(e), m, contributions) for e, m in mixins.items()}

    queries: list[type] = [GatewayQuery] if name == GATEWAY_SUBGRAPH else []
    metas: list[FieldMeta] = []
    types: dict[str, type] = {}
    if served.query is not None:
        queries.append(served.query)
        metas.extend(field_metas(name, "Query", get_object_definition(served.query, strict=True)))
    for cls in served.types:
        definition = get_object_definition(cls, strict=True)
        types[definition.name] = cls
        metas.extend(field_metas(name, definition.name, definition))
    entity_classes: dict[str, type] = {}
    for entity, owned in mixins.items():
        # The combined entity checks that the mixins agree; its fields give the key's type.
        composed = _compose_entity(entity, owners.get(entity), owned)
        all_fields = {f.python_name: f for f in get_object_definition(composed, strict=True).fields}
        key = keys[entity]
        own: list[StrawberryField] = []
        for connector, mixin in owned:
            definition = get_object_definition(mixin, strict=True)
            metas.extend(field_metas(connector, entity, definition))
            if connector == name:
                own = list(definition.fields)
        cls = _entity_type(entity, name, key, own, all_fields[key.python_name])
        entity_classes[entity] = cls
        setattr(entities, entity, cls)
        if own:
            types[entity] = cls
        query = ENTITY_QUERIES.get(entity)
        if query is not None and entity in owners:
            metas.extend(field_metas(owners[entity], "Query", get_object_definition(query, strict=True)))
            if owners[entity] == name:
                queries.append(query)
    # Whatever reads a shared entity is decided by the connector that owns it.
    metas = [replace(m, connector=owners.get(m.resource_type, m.connector)) for m in metas]
    catalog = _catalog(metas)
    extensions: list[type[SchemaExtension]] = [
        gate(limits, introspection=introspection),
        _policy_extension({**_own_lookups(served), **{e: k.lookup for e, k in keys.items()}}),
        FederatedTracing,
    ]
    holder: dict[str, str] = {}

    def service() -> ServiceSDL:
        return ServiceSDL(sdl=holder["sdl"])

    service_field = cast(StrawberryField, strawberry.field(resolver=service, name="_service"))
    ServiceQuery = create_type("ServiceQuery", [service_field])

    query_type = merge_types("Query", (*queries, ServiceQuery))
    schema = SubgraphSchema(
        query=query_type,
        types=list(types.values()),
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        execution_context_class=CompiledExecutionContext if compiled else AcyclicExecutionContext,
        federation_version="2.3",
    )
    holder["sdl"] = _shareable_sdl(print_schema(schema), set(entity_classes))
    record_types: dict[str, str] = dict(served.record_types)
    built = BuiltSchema(
        schema=schema,
        catalog=catalog,
        types={**types, **{e: c for e, c in entity_classes.items()}},
        keys=dict(served.keys),
        owners=owners,
        record_types=record_types,
    )
    references = {
        e: functools.partial(_reference, cls, keys[e]) for e, cls in entity_classes.items() if owners.get(e) != name
    }
    return Subgraph(built=built, keys=keys, sdl=holder["sdl"], references=references)


__all__ = [
    "GATEWAY_SUBGRAPH",
    "TRACE_REQUESTED",
    "EntityKey",
    "FederatedTracing",
    "Subgraph",
    "SubgraphError",
    "build_subgraph",
    "check_subgraph_name",
    "subgraph_names",
]
