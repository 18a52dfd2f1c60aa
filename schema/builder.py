"""Build the one strawberry schema from the enabled connectors' contributions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult
from strawberry.types.base import get_object_definition
from strawberry.types.graphql import OperationType

from connectors.base import Connector, SchemaContribution
from connectors.errors import ConnectorConfigError
from resolvers.context import RequestContext, Runtime
from schema import direct, entities
from schema.acyclic import AcyclicExecutionContext
from schema.execution import CompiledExecutionContext
from schema.fieldmeta import FieldCatalog, FieldMeta, field_metas
from schema.gate import gate
from schema.limits import Limits
from schema.lookups import ENTITY_QUERIES
from schema.policy import PolicyExtension
from schema.scalars import SCALAR_MAP

if TYPE_CHECKING:
    from audit import AuditTrail
    from policies.engine import PolicyEngine


class CityGraphSchema(strawberry.Schema):
    """strawberry's schema with the gate and the policy extension, running operations through
    them directly (``schema.direct``), and without strawberry's per-error stack-trace logging.

    A denied or masked field is policy working, not a server error; the gate (``schema.gate``)
    logs the unexpected errors, with an error id the client also sees.
    """

    def __init__(self, *, limits: Limits, introspection: bool = True, **options: Any) -> None:
        extension = gate(limits, introspection=introspection)
        self._limits = limits
        self._rules = extension.rules  # one validation-rule class per schema: one cache entry per document
        super().__init__(extensions=[extension, PolicyExtension], **options)
        # What schema.direct does not do, strawberry's execute does: strawberry directives (an
        # extension of their own) and incremental delivery (another executor).
        self._direct = not self.directives and not self.config.enable_experimental_incremental_execution

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """strawberry's ``execute``; a request's operation runs through ``schema.direct``."""
        if (
            not self._direct
            or not query
            or not isinstance(context_value, RequestContext)
            or operation_extensions is not None
        ):
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        allowed = DEFAULT_ALLOWED_OPERATION_TYPES if allowed_operation_types is None else allowed_operation_types
        return await direct.run(
            self, self._limits, self._rules, query, variable_values, context_value, root_value, operation_name, allowed
        )

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None


@dataclass(frozen=True, slots=True)
class BuiltSchema:
    """The schema plus what the request path needs to know about it."""

    schema: strawberry.Schema
    catalog: FieldCatalog
    types: Mapping[str, type]
    keys: Mapping[str, str]
    owners: Mapping[str, str]
    record_types: Mapping[str, str]

    def runtime(
        self,
        connectors: Mapping[str, Connector],
        engine: PolicyEngine,
        audit: AuditTrail,
        timeouts: Mapping[str, float],
        *,
        max_page_size: int = 500,
        references: Mapping[str, Callable[[str], object]] | None = None,
    ) -> Runtime:
        """The request path's ``Runtime``: this schema's catalog and types with the given parts."""
        return Runtime(
            connectors=connectors,
            engine=engine,
            audit=audit,
            catalog=self.catalog,
            types=self.types,
            keys=self.keys,
            owners=self.owners,
            record_types=self.record_types,
            timeouts=timeouts,
            max_page_size=max_page_size,
            references=references or {},
        )


@functools.cache
def _gateway_version() -> str:
    """The installed package's version, read once: ``importlib.metadata`` parses the package's
    metadata file on every call, about 0.3 ms, and the version cannot change while it runs."""
    from importlib.metadata import version

    return version("citygraph")


@strawberry.type(description="CityGraph 网关 (gateway) information")
class GatewayQuery:
    gateway_version: str = strawberry.field(resolver=_gateway_version, description="网关版本 (gateway version)")


def _compose_entity(name: str, owner: str | None, mixins: list[tuple[str, type]]) -> type:
    """One entity class from its mixins, the owner's first so its definitions win.

    A plain (resolver-less) field is read from the record the owner materialises, so another
    connector may declare one only if the owner declares it too, with the same type.
    """
    ordered = sorted(mixins, key=lambda item: item[0] != owner)
    served: dict[str, object] = {}
    for connector, mixin in ordered:
        for f in get_object_definition(mixin, strict=True).fields:
            plain = f.base_resolver is None
            if connector == owner and plain:
                served[f.python_name] = f.type
            elif plain and served.get(f.python_name) != f.type:
                raise ConnectorConfigError(
                    f"{name}.{f.python_name} from {connector} is a plain field, but {owner or 'no connector'} owns "
                    f"{name} and does not serve it: give it a resolver"
                )
    bases = tuple(m for _, m in ordered)
    composed = strawberry.type(type(name, bases, {}), name=name, description=entities.DESCRIPTIONS.get(name))
    setattr(entities, name, composed)
    return composed


def _catalog(metas: list[FieldMeta]) -> FieldCatalog:
    """Index metadata by coordinate; a coordinate declared twice must be classified the same way."""
    by_coordinate: dict[str, FieldMeta] = {}
    for meta in metas:
        seen = by_coordinate.get(meta.coordinate)
        if seen is not None and seen != meta:
            raise ConnectorConfigError(
                f"{meta.coordinate} is declared twice with different classification or governance: "
                f"{seen.level}/{seen.pi}/{seen.resource_type} vs {meta.level}/{meta.pi}/{meta.resource_type}"
            )
        by_coordinate[meta.coordinate] = meta
    return FieldCatalog(by_coordinate)


def _owners(contributions: Mapping[str, SchemaContribution]) -> dict[str, str]:
    ranked: dict[str, tuple[int, str]] = {}
    for connector, contribution in contributions.items():
        for entity, priority in contribution.owns.items():
            if entity not in ranked or priority > ranked[entity][0]:
                ranked[entity] = (priority, connector)
    return {entity: connector for entity, (_, connector) in ranked.items()}


def build_schema(
    connectors: Mapping[str, Connector], limits: Limits, *, introspection: bool = True, compiled: bool = True
) -> BuiltSchema:
    """Compose Query, the shared entities and every connector's types into one schema.

    ``compiled`` completes eligible lists with ``schema.execution.CompiledExecutionContext``;
    off, every field takes graphql-core's generic path (the results are identical).
    """
    from schema.officers import GATEWAY, OFFICER_FIELDS

    contributions = {name: connector.schema() for name, connector in connectors.items()}
    contributions[GATEWAY] = OFFICER_FIELDS
    owners = _owners(contributions)
    queries: list[type] = [GatewayQuery]
    mixins: dict[str, list[tuple[str, type]]] = {}
    metas: list[FieldMeta] = []
    types: dict[str, type] = {}
    keys: dict[str, str] = {}
    record_types: dict[str, str] = {}
    for name, contribution in contributions.items():
        record_types.update(contribution.record_types)
        if contribution.query is not None:
            queries.append(contribution.query)
            metas.extend(field_metas(name, "Query", get_object_definition(contribution.query, strict=True)))
        for entity, mixin in contribution.entity_fields.items():
            mixins.setdefault(entity, []).append((name, mixin))
            metas.extend(field_metas(name, entity, get_object_definition(mixin, strict=True)))
        for cls in contribution.types:
            definition = get_object_definition(cls, strict=True)
            types[definition.name] = cls
            metas.extend(field_metas(name, definition.name, definition))
        keys.update(contribution.keys)
    for entity, owned in mixins.items():
        types[entity] = _compose_entity(entity, owners.get(entity), owned)
        if entity in owners and entity in ENTITY_QUERIES:
            query = ENTITY_QUERIES[entity]
            queries.append(query)
            metas.extend(field_metas(owners[entity], "Query", get_object_definition(query, strict=True)))
    # Whatever reads a shared entity is decided by the connector that owns it.
    metas = [replace(m, connector=owners.get(m.resource_type, m.connector)) for m in metas]
    catalog = _catalog(metas)
    schema = CityGraphSchema(
        query=merge_types("Query", tuple(queries)),
        types=list(types.values()),
        limits=limits,
        introspection=introspection,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        execution_context_class=CompiledExecutionContext if compiled else AcyclicExecutionContext,
    )
    return BuiltSchema(schema=schema, catalog=catalog, types=types, keys=keys, owners=owners, record_types=record_types)


__all__ = ["BuiltSchema", "build_schema"]
