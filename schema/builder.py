"""Build the one strawberry schema from the enabled connectors' contributions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.base import get_object_definition

from connectors.base import Connector
from connectors.errors import ConnectorConfigError
from schema import entities
from schema.errors import ErrorCodes
from schema.fieldmeta import FieldCatalog, FieldMeta, field_metas
from schema.limits import Limits, limits_rule
from schema.policy import PolicyExtension
from schema.scalars import SCALAR_MAP


class CityGraphSchema(strawberry.Schema):
    """strawberry's schema without its per-error stack-trace logging.

    A denied or masked field is policy working, not a server error; ``schema.errors.ErrorCodes``
    logs the unexpected errors, with an error id the client also sees.
    """

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None


@dataclass(frozen=True, slots=True)
class BuiltSchema:
    """The schema plus what the request path needs to know about it."""

    schema: strawberry.Schema
    catalog: FieldCatalog
    types: Mapping[str, type]
    keys: Mapping[str, str]


def _limits_extension(limits: Limits) -> type[SchemaExtension]:
    class OperationLimits(SchemaExtension):
        def on_validate(self) -> Any:
            ec = self.execution_context
            variables = ec.variables or {}
            ec.validation_rules = (*ec.validation_rules, limits_rule(limits, lambda: variables))
            yield

    return OperationLimits


def _gateway_version() -> str:
    from importlib.metadata import version

    return version("citygraph")


@strawberry.type(description="CityGraph 网关 (gateway) information")
class GatewayQuery:
    gateway_version: str = strawberry.field(resolver=_gateway_version, description="网关版本 (gateway version)")


def _compose_entity(name: str, mixins: list[type]) -> type:
    seen: dict[str, str] = {}
    for mixin in mixins:
        definition = get_object_definition(mixin, strict=True)
        for f in definition.fields:
            if f.python_name in seen and f.python_name != "uscc":
                raise ConnectorConfigError(
                    f"{name}.{f.python_name} is contributed by both {seen[f.python_name]} and {mixin.__name__}"
                )
            seen[f.python_name] = mixin.__name__
    composed = strawberry.type(type(name, tuple(mixins), {}), name=name, description=entities.DESCRIPTIONS.get(name))
    setattr(entities, name, composed)
    return composed


def build_schema(connectors: Mapping[str, Connector], limits: Limits, *, introspection: bool = True) -> BuiltSchema:
    """Compose Query, the shared entities and every connector's types into one schema."""
    queries: list[type] = [GatewayQuery]
    mixins: dict[str, list[tuple[str, type]]] = {}
    metas: list[FieldMeta] = []
    types: dict[str, type] = {}
    keys: dict[str, str] = {}
    for name, connector in connectors.items():
        contribution = connector.schema()
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
        types[entity] = _compose_entity(entity, [m for _, m in owned])
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        _limits_extension(limits),
        PolicyExtension,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    schema = CityGraphSchema(
        query=merge_types("Query", tuple(queries)),
        types=list(types.values()),
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
    )
    catalog = FieldCatalog({m.coordinate: m for m in metas})
    return BuiltSchema(schema=schema, catalog=catalog, types=types, keys=keys)


__all__ = ["BuiltSchema", "build_schema"]
