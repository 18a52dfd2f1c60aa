"""Fields for security officers: ``Query.policyExplain`` and ``Query.auditTrail``.

Both are governed by the policy like any read — connector ``gateway``, types
``PolicyExplanation`` and ``AuditRecord`` (``policies/rego/gateway.rego``: security officers
only) — and reading them is itself audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from audit import AuditQuery
from connectors.base import Page, SchemaContribution
from connectors.errors import InvalidArgument
from connectors.sql import Cursors, decode_cursor
from edge.identity import InvalidToken, principal_from_claims
from policies.principal import Purpose
from resolvers import Connection, check_coordinate, check_first, coded_error, context_of
from resolvers.loaders import emit_records
from resolvers.pagination import connection
from schema.directives import classified, resolved
from schema.explain import ExplainError, explain

GATEWAY = "gateway"
EXPLANATION = "PolicyExplanation"


@strawberry.type(description="一个字段的策略结论 (the policy verdict for one schema coordinate)")
class PolicyCoordinate:
    coordinate: str = classified(2, "模式坐标 (schema coordinate)", resource=EXPLANATION)
    connector: str = classified(2, "连接器 (connector)", resource=EXPLANATION)
    type: str = classified(2, "决策类型 (decision type)", resource=EXPLANATION)
    level: int = classified(2, "数据分级 (classification level 1-4)", resource=EXPLANATION)
    action: str = classified(2, "allow / mask / deny", resource=EXPLANATION)
    code: str | None = classified(2, "拒绝代码 (deny code)", resource=EXPLANATION)
    mask: str | None = classified(2, "脱敏方式 (masking pattern)", resource=EXPLANATION)


@strawberry.type(description="一个 (连接器, 类型) 的决策 (one (connector, type) decision)")
class PolicyTypeDecision:
    connector: str = classified(2, "连接器 (connector)", resource=EXPLANATION)
    type: str = classified(2, "类型 (type)", resource=EXPLANATION)
    allow: bool = classified(2, "是否允许 (allowed)", resource=EXPLANATION)
    code: str | None = classified(2, "拒绝代码 (deny code)", resource=EXPLANATION)
    filter: JSON | None = classified(2, "行过滤条件 UCAST (row filter)", resource=EXPLANATION)
    obligations: JSON = classified(2, "义务 (obligations)", resource=EXPLANATION)
    reasons: list[str] = classified(2, "理由 (reasons)", resource=EXPLANATION)


@strawberry.type(description="策略预演 (policy dry run: what an operation would be allowed to read)")
class PolicyExplanation:
    revision: str = classified(2, "策略版本 (policy revision)", resource=EXPLANATION)
    operation: str | None = classified(2, "操作名 (operation name)", resource=EXPLANATION)
    coordinates: list[PolicyCoordinate] = classified(2, "逐字段结论 (verdict per coordinate)", resource=EXPLANATION)
    types: list[PolicyTypeDecision] = classified(2, "逐类型决策 (decision per type)", resource=EXPLANATION)


@strawberry.input(description="以谁的身份预演 (the principal to explain for)")
class ExplainAs:
    department: str = ""
    roles: list[str] = strawberry.field(default_factory=list)
    districts: list[str] = strawberry.field(default_factory=list)
    clearance: int = 1


@strawberry.type(name="AuditRecord", description="审计记录 (an audit record: who read what, when, why)")
class AuditRecordEntry:
    seq: int = classified(2, "序号 (sequence number)")
    ts: dt.datetime = classified(2, "时间 (time, RFC 3339)")
    request_id: str = classified(2, "请求编号 (request id)")
    subject: str = classified(2, "主体 (subject)")
    department: str = classified(2, "部门 (department)")
    purpose: str | None = classified(2, "使用目的 (purpose of use)")
    case_ref: str | None = classified(2, "案件编号 (case reference)")
    operation_name: str | None = classified(2, "操作名 (operation name)")
    document_hash: str = classified(2, "查询文档哈希 (SHA-256 of the query document)")
    coordinates: list[str] = classified(2, "读取的模式坐标 (schema coordinates read)")
    record_keys: JSON = classified(2, "返回记录的键 (keys of the records returned, by type)")
    policy_revision: str = classified(2, "策略版本 (policy revision)")
    outcome: str = classified(2, "结果 (outcome)")
    classification: int = classified(2, "最高数据分级 (highest level touched)")
    hash: str = classified(2, "本条哈希 (this record's chain hash)")
    prev_hash: str = classified(2, "上一条哈希 (previous record's hash)")


@strawberry.input(description="审计检索条件 (audit trail filter); all given criteria must hold")
class AuditFilter:
    subject: str | None = None
    department: str | None = None
    purpose: str | None = None
    case_ref: str | None = None
    record_key: str | None = strawberry.field(default=None, description="返回过该键 (returned this record key)")
    since: dt.datetime | None = strawberry.field(default=None, name="from")
    until: dt.datetime | None = strawberry.field(default=None, name="to")


@strawberry.type
class OfficerQuery:
    @resolved(
        2, "策略预演，不读取任何部门数据 (explain a query for a principal; reads no data)", resource="PolicyExplanation"
    )
    async def policy_explain(
        self,
        info: Info,
        query: str,
        variables: JSON | None = None,
        as_: Annotated[ExplainAs | None, strawberry.argument(name="as")] = None,
        purpose: str | None = None,
        case_ref: str | None = None,
    ) -> PolicyExplanation:
        ctx = context_of(info)
        check_coordinate(ctx, GATEWAY, "PolicyExplanation", "Query.policyExplain")
        principal = ctx.principal
        if as_ is not None:
            claims = {"sub": "explain", "dept": as_.department, "roles": as_.roles, "districts": as_.districts}
            try:
                principal = principal_from_claims({**claims, "clearance": as_.clearance})
            except InvalidToken as exc:
                raise coded_error("BAD_USER_INPUT", f"as: {exc}") from exc
        try:
            result = await explain(
                ctx.runtime,
                info.schema._schema,
                query,
                principal=principal,
                purpose=Purpose(purpose, case_ref),
                variables=cast(dict[str, Any], variables) if isinstance(variables, dict) else None,
            )
        except ExplainError as exc:
            raise coded_error("BAD_USER_INPUT", str(exc)) from exc
        return PolicyExplanation(
            revision=result.revision,
            operation=result.operation,
            coordinates=[PolicyCoordinate(**vars_of(c)) for c in result.coordinates],
            types=[
                PolicyTypeDecision(
                    connector=t.connector,
                    type=t.type,
                    allow=t.allow,
                    code=t.code,
                    filter=cast(JSON, dict(t.filter) if t.filter is not None else None),
                    obligations=cast(JSON, dict(t.obligations)),
                    reasons=list(t.reasons),
                )
                for t in result.types
            ],
        )

    @resolved(2, "审计记录检索，新记录在前 (the audit trail, newest first)", resource="AuditRecord")
    async def audit_trail(
        self, info: Info, filter: AuditFilter | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[AuditRecordEntry]:
        ctx = context_of(info)
        check_coordinate(ctx, GATEWAY, "AuditRecord", "Query.auditTrail")
        size = check_first(first, ctx.runtime.max_page_size)
        after_seq = 0
        if after:
            try:
                (raw,) = decode_cursor(after, 1)
                after_seq = int(raw)
            except (InvalidArgument, ValueError) as exc:
                raise coded_error("BAD_USER_INPUT", "after: not a cursor issued by this API") from exc
        f = filter or AuditFilter()
        criteria = AuditQuery(f.subject, f.department, f.purpose, f.case_ref, f.record_key, f.since, f.until)
        found = await ctx.runtime.audit.search(criteria, after_seq=after_seq, limit=size + 1)
        page = found[:size]
        rows = [{**vars_of(r.entry), "seq": r.seq, "ts": r.ts, "hash": r.hash, "prev_hash": r.prev_hash} for r in page]
        for row in rows:
            row["coordinates"] = list(row["coordinates"])
            row["record_keys"] = {k: list(v) for k, v in dict(row["record_keys"]).items()}
        objects = cast(list[AuditRecordEntry], emit_records(ctx, GATEWAY, "AuditRecord", rows))
        cursors = Cursors(page, lambda r: (r.seq,))
        return connection(objects, Page(records=rows, cursors=cursors, has_next_page=len(found) > size))


def vars_of(obj: object) -> dict[str, Any]:
    """The fields of a slotted dataclass as a dict."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}  # type: ignore[attr-defined]


#: The gateway's own part of the graph, decided by ``policies/rego/gateway.rego``.
OFFICER_FIELDS = SchemaContribution(
    query=OfficerQuery,
    types=(AuditRecordEntry, PolicyExplanation, PolicyCoordinate, PolicyTypeDecision),
    keys={"AuditRecord": "seq"},
)

__all__ = ["GATEWAY", "OFFICER_FIELDS", "AuditRecordEntry", "OfficerQuery", "PolicyExplanation"]
