"""The policy: one decision per (connector, type) per operation, then the audit record.

Before execution (:func:`decide`, given the operation's summary) it groups the touched coordinates by the
(connector, type) decision that governs them and asks the engine for all of them concurrently;
resolvers only read ``context.decisions``. After execution (:func:`record`) it appends the audit
record when the operation touched non-public data; if that write fails, no data leaves (fail
closed). ``schema.direct`` calls both; :class:`PolicyExtension` is the same as a strawberry extension.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from graphql import DocumentNode, GraphQLError, parse, print_ast
from strawberry.extensions import SchemaExtension

from audit import AuditEntry, AuditWriteError
from policies.cache import CachingEngine
from policies.decision import Decision
from resolvers.context import DecisionKey, RequestContext
from resolvers.errors import coded_error
from schema.fieldmeta import FieldCatalog, FieldMeta
from schema.gate import Result
from schema.operation import OperationSummary, summarize

log = structlog.get_logger(__name__)
CITY_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Groups:
    """The decisions an operation's coordinates need under one catalog: the same for every request
    with those coordinates, so made once (``grouped``) and shared between requests, read-only."""

    #: The coordinates each (connector, type) decision governs, in the operation's order.
    metas: dict[DecisionKey, list[FieldMeta]]
    #: ``input.resource`` of each decision's input document.
    resources: dict[DecisionKey, dict[str, object]]
    #: The Python names of each decided type's own fields (``RequestContext.fields``).
    fields: dict[DecisionKey, frozenset[str]]
    #: The same by type, under every connector's decision together (``RequestContext.selected``).
    selected: dict[str, frozenset[str]]


def groups_of(catalog: FieldCatalog, coordinates: Sequence[str]) -> dict[DecisionKey, list[FieldMeta]]:
    """The touched coordinates grouped by the (connector, type) decision that governs them."""
    groups: dict[DecisionKey, list[FieldMeta]] = {}
    for coordinate in coordinates:
        meta = catalog.get(coordinate)
        if meta is None:
            continue
        groups.setdefault((meta.connector, meta.resource_type), []).append(meta)
        # A coordinate the resolver reads on the way is decided as if it had been selected.
        for read in meta.reads:
            other = catalog.get(read)
            if other is not None and read not in coordinates:
                group = groups.setdefault((other.connector, other.resource_type), [])
                if other not in group:
                    group.append(other)
    return groups


#: How many (catalog, coordinates) groupings ``grouped`` keeps, least recently used out first.
GROUPED_SIZE = 1024


def grouped(catalog: FieldCatalog, coordinates: Sequence[str]) -> Groups:
    """``groups_of`` with each decision's resource document and field names, once per catalog and
    coordinates (an operation's summary lists the same coordinates on every request)."""
    return _grouped(catalog, tuple(coordinates))


# functools' LRU: bounded and thread-safe (apps may run event loops on several threads). A catalog
# is keyed by identity (FieldCatalog compares by identity) and kept alive by its entries.
@functools.lru_cache(maxsize=GROUPED_SIZE)
def _grouped(catalog: FieldCatalog, coordinates: tuple[str, ...]) -> Groups:
    metas = groups_of(catalog, coordinates)
    fields = {
        key: frozenset(m.python_name for m in group if m.coordinate.startswith(key[1] + "."))
        for key, group in metas.items()
    }
    selected: dict[str, frozenset[str]] = {}
    for (_, type_name), names in fields.items():
        selected[type_name] = selected.get(type_name, frozenset()) | names
    return Groups(
        metas=metas,
        resources={
            (connector, type_name): {
                "connector": connector,
                "type": type_name,
                "classification": max(m.level for m in group),
                # A tuple: shared between requests, so nothing on the way can append to it.
                "fields": tuple({"coordinate": m.coordinate, "level": m.level, "pi": m.pi} for m in group),
            }
            for (connector, type_name), group in metas.items()
        },
        fields=fields,
        selected=selected,
    )


def input_docs(ctx: RequestContext, groups: Groups, summary: OperationSummary) -> dict[DecisionKey, dict[str, object]]:
    """The engine's input document for each decision of one operation.

    The members every decision shares (subject, operation, context) are one object in all of
    them, and each ``resource`` is the one ``groups`` holds for every request: engines read
    input documents and never change them (``policies.engine.PolicyEngine``).
    """
    subject = ctx.principal.to_policy()
    operation = {
        "type": summary.type,
        "name": summary.name,
        "coordinates": summary.coordinates,
        "args": summary.args,
        "depth": summary.depth,
    }
    context = {
        "now_ns": time.time_ns(),
        "today": datetime.now(CITY_TZ).date().isoformat(),
        "request_id": ctx.request_id,
    }
    return {
        key: {
            "subject": subject,
            "action": "read",
            "purpose": ctx.purpose.code,
            "case_ref": ctx.purpose.case_ref,
            "resource": resource,
            "operation": operation,
            "context": context,
        }
        for key, resource in groups.resources.items()
    }


def _needs_audit(groups: dict[DecisionKey, list[FieldMeta]], decisions: dict[DecisionKey, Decision]) -> int:
    """The highest level of non-public data the operation may return (0 when nothing to audit)."""
    level = 0
    for key, metas in groups.items():
        decision = decisions[key]
        if not decision.allow:
            continue
        for meta in metas:
            rule = decision.rule(meta.coordinate)
            if rule is None or rule.action != "deny":
                level = max(level, meta.level)
        if decision.obligations.get("audit") == "full":
            level = max(level, 2)
    return level if level >= 2 else 0


async def decide_all(ctx: RequestContext, summary: OperationSummary) -> dict[DecisionKey, list[FieldMeta]]:
    """Ask the engine once per (connector, type), concurrently; fill ``ctx.decisions`` and
    ``ctx.fields``. Returns the coordinates each decision governs (shared: read-only)."""
    groups = grouped(ctx.runtime.catalog, summary.coordinates)
    engine = ctx.runtime.engine
    docs = input_docs(ctx, groups, summary)
    decisions: dict[DecisionKey, Decision] = {}
    if isinstance(engine, CachingEngine):  # hits are read in place: a task each cost more than the lookup
        for key, doc in docs.items():
            hit = engine.lookup(doc)
            if hit is not None:
                decisions[key] = hit
    missing = [key for key in docs if key not in decisions]
    if missing:
        decisions.update(zip(missing, await asyncio.gather(*(engine.decide(docs[k]) for k in missing)), strict=True))
    for key in groups.metas:  # in the operation's order, hits and misses alike
        ctx.decisions[key] = decisions[key]
        ctx.fields[key] = groups.fields[key]
    ctx.selected.update(groups.selected)
    return groups.metas


async def decide(ctx: RequestContext, summary: OperationSummary) -> dict[DecisionKey, list[FieldMeta]]:
    """``decide_all``, with a debug line per decision."""
    groups = await decide_all(ctx, summary)
    # Debug only: the decision log (policies/decisionlog.py) is the record of decisions, and a
    # timestamped line per decision per request costs more CPU than a cached decision. Bound
    # once: structlog's module-level proxy builds a logger on every attribute read.
    debug = log.debug
    for key in groups:
        decision = ctx.decisions[key]
        debug(
            "decision",
            request_id=ctx.request_id,
            connector=key[0],
            type=key[1],
            allow=decision.allow,
            reasons=list(decision.reasons),
        )
    return groups


async def record(
    ctx: RequestContext,
    summary: OperationSummary,
    groups: dict[DecisionKey, list[FieldMeta]],
    result: Result,
    query: str | None,
    document: DocumentNode,
) -> None:
    """Append the audit record of an executed operation that may return non-public data; when
    that fails, withhold ``result``'s data (fail closed: it becomes ``AUDIT_UNAVAILABLE``)."""
    level = _needs_audit(groups, ctx.decisions)
    if not level:
        return
    errors = result.errors or []
    entry = AuditEntry(
        request_id=ctx.request_id,
        subject=ctx.principal.subject,
        department=ctx.principal.department,
        purpose=ctx.purpose.code,
        case_ref=ctx.purpose.case_ref,
        operation_name=summary.name,
        document_hash=_document_hash(query) if query else _hash_document(document),
        coordinates=tuple(summary.coordinates),
        record_keys={t: tuple(keys) for t, keys in ctx.returned.items()},
        policy_revision=ctx.runtime.engine.status().revision,
        outcome="partial" if errors and result.data else ("ok" if not errors else "error"),
        classification=level,
    )
    try:
        await ctx.runtime.audit.append(entry)
    except AuditWriteError:
        log.error("audit write failed: response withheld", request_id=ctx.request_id)
        result.data = None
        result.errors = [_audit_error()]


class PolicyExtension(SchemaExtension):
    """:func:`decide` before execution and :func:`record` after it, as a strawberry extension, for
    schemas that run operations through strawberry's extensions (a subgraph's);
    ``CityGraphSchema`` calls them itself."""

    def summarize(self) -> OperationSummary:
        """What the operation touches; subgraphs add the lookups their entity references stand for."""
        ec = self.execution_context
        document = ec.graphql_document
        if document is None:  # on_execute only asks once the document is parsed
            raise RuntimeError("no document to summarise")
        return summarize(ec.schema._schema, document, ec.operation_name, ec.variables)

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx = ec.context
        if not isinstance(ctx, RequestContext) or ec.graphql_document is None:
            yield  # no request context: resolvers find no decisions and deny
            return
        if ec.result is not None:
            # Refused before execution (the gate's cost limit): nothing will be read, so there is
            # nothing to decide or audit, and a refused request costs no engine call or audit row.
            yield
            return
        summary = self.summarize()
        groups = await decide(ctx, summary)
        yield
        if ec.result is not None:
            await record(ctx, summary, groups, ec.result, ec.query, ec.graphql_document)


def _hash_document(document: DocumentNode) -> str:
    """SHA-256 of the document as printed: the same for any spacing or comments of one query."""
    return hashlib.sha256(print_ast(document).encode()).hexdigest()


@functools.lru_cache(maxsize=512)
def _document_hash(query: str) -> str:
    """``_hash_document`` of a query text, once per text: printing the AST costs more than the
    rest of an audit record (the text parsed successfully before execution, so it parses here)."""
    return _hash_document(parse(query))


def _audit_error() -> GraphQLError:
    return coded_error(
        "AUDIT_UNAVAILABLE",
        "The audit trail could not record this read, so no data is returned. Try again later.",
    )


__all__ = [
    "CITY_TZ",
    "Groups",
    "PolicyExtension",
    "decide",
    "decide_all",
    "grouped",
    "groups_of",
    "input_docs",
    "record",
]
