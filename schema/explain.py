"""Dry-run explain: what an operation *would* be allowed to read, without reading any data.

The same summary, grouping and one-decision-per-(connector, type) as execution
(``schema.policy.decide_all``), then each coordinate is judged the way the resolvers and the
record layer would judge it. No connector is called, so it is safe to run for any principal.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import GraphQLSchema, parse, validate
from graphql.error import GraphQLError

from connectors.base import RowFilter
from policies.decision import Decision
from policies.principal import Principal, Purpose
from resolvers.context import RequestContext, Runtime
from resolvers.records import SENSITIVE_LEVEL
from schema.fieldmeta import FieldMeta
from schema.operation import summarize
from schema.policy import decide_all


class ExplainError(ValueError):
    """The document cannot be explained (it does not parse or validate)."""


@dataclass(frozen=True, slots=True)
class CoordinateVerdict:
    """What happens to one schema coordinate for this principal."""

    coordinate: str
    connector: str
    type: str
    level: int
    action: str  # allow | mask | deny
    code: str | None = None
    mask: str | None = None


@dataclass(frozen=True, slots=True)
class TypeVerdict:
    """One (connector, type) decision: allowed or not, the row filter, obligations and reasons."""

    connector: str
    type: str
    allow: bool
    code: str | None
    filter: RowFilter | None
    obligations: Mapping[str, object]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The explanation of one operation for one principal and purpose."""

    revision: str
    operation: str | None
    coordinates: list[CoordinateVerdict] = field(default_factory=list)
    types: list[TypeVerdict] = field(default_factory=list)


def judge(meta: FieldMeta, decision: Decision) -> CoordinateVerdict:
    """The verdict for one coordinate, exactly as resolvers and ``resolvers.records`` apply it."""

    def verdict(action: str, code: str | None = None, mask: str | None = None) -> CoordinateVerdict:
        return CoordinateVerdict(meta.coordinate, meta.connector, meta.resource_type, meta.level, action, code, mask)

    if not decision.allow:
        return verdict("deny", decision.code)
    rule = decision.rule(meta.coordinate)
    is_record_field = meta.coordinate.startswith(meta.resource_type + ".")
    if rule is None:
        if is_record_field and meta.level >= SENSITIVE_LEVEL:
            return verdict("deny", "FORBIDDEN")
        return verdict("allow")
    if rule.action == "deny":
        return verdict("deny", rule.code)
    if rule.action == "mask" and is_record_field:
        pattern = (
            f"replace:{rule.replace}" if rule.replace is not None else f"keep {rule.keep_prefix}+{rule.keep_suffix}"
        )
        return verdict("mask", mask=pattern)
    return verdict("allow")


async def explain(
    runtime: Runtime,
    schema: GraphQLSchema,
    query: str,
    *,
    principal: Principal,
    purpose: Purpose,
    variables: Mapping[str, object] | None = None,
    operation_name: str | None = None,
) -> Explanation:
    """Explain ``query`` for ``principal``; raises ExplainError when the document is invalid."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise ExplainError(f"the query does not parse: {exc.message}") from exc
    errors = validate(schema, document)
    if errors:
        raise ExplainError("the query is not valid: " + "; ".join(e.message for e in errors[:3]))
    ctx = RequestContext(
        runtime=runtime, principal=principal, purpose=purpose, request_id=f"explain-{uuid.uuid4().hex}"
    )
    summary = summarize(schema, document, operation_name, variables)
    groups = await decide_all(ctx, summary)
    explanation = Explanation(revision=runtime.engine.status().revision, operation=summary.name)
    for key, metas in groups.items():
        decision = ctx.decisions[key]
        explanation.types.append(
            TypeVerdict(
                connector=key[0],
                type=key[1],
                allow=decision.allow,
                code=None if decision.allow else decision.code,
                filter=decision.filter,
                obligations=dict(decision.obligations),
                reasons=decision.reasons,
            )
        )
        explanation.coordinates.extend(judge(meta, decision) for meta in metas)
    explanation.coordinates.sort(key=lambda v: summary.coordinates.index(v.coordinate))
    return explanation


__all__ = ["CoordinateVerdict", "ExplainError", "Explanation", "TypeVerdict", "explain", "judge"]
