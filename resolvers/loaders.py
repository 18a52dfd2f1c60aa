"""Per-request loaders: batch keys, call the connector once per batch, apply the decision once.

Resolvers call the helpers here; nothing here writes SQL or calls the policy engine. A connector
that fails, raises something unexpected or exceeds its timeout turns its fields into
``CONNECTOR_UNAVAILABLE`` errors; the rest of the response still arrives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import structlog
from graphql import GraphQLError
from prometheus_client import Counter

from connectors.base import JSON, FetchRequest, Page, Record, SearchRequest
from connectors.errors import ConnectorError, FilterError, InvalidArgument
from policies.decision import Decision
from resolvers.batching import BatchLoader
from resolvers.context import RequestContext
from resolvers.deadline import within
from resolvers.errors import coded_error, unavailable
from resolvers.records import RecordPlan, keys_of, materialize

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _denial(decision: Decision) -> GraphQLError:
    return coded_error(decision.code)


async def _call(ctx: RequestContext, connector: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run one connector call under its timeout; every failure becomes CONNECTOR_UNAVAILABLE."""
    try:
        return await within(call(), ctx.runtime.timeouts.get(connector, 5.0))
    except InvalidArgument as exc:
        raise coded_error("BAD_USER_INPUT", str(exc)) from exc
    except FilterError as exc:
        # A filter the connector cannot apply is a deny, never an unfiltered read.
        log.warning("row filter refused", connector=connector, error=str(exc), request_id=ctx.request_id)
        raise coded_error("FORBIDDEN") from exc
    except (ConnectorError, TimeoutError) as exc:
        log.warning("connector unavailable", connector=connector, error=repr(exc), request_id=ctx.request_id)
        raise unavailable(connector) from exc
    except Exception as exc:  # a connector bug must not leak a stack trace or fail the operation
        log.exception("connector failed", connector=connector, request_id=ctx.request_id)
        raise unavailable(connector) from exc


def _plan(ctx: RequestContext, connector: str, type_name: str) -> RecordPlan:
    plan = ctx.plans.get(type_name)
    if plan is None:
        decision = ctx.decision(connector, type_name)
        # A plan covers all the type's fields, link fields another connector governs included:
        # what the operation selects under any connector's decision (None: not known).
        selected = ctx.selected.get(type_name)
        plan = ctx.plans[type_name] = ctx.runtime.record_plans.get(type_name, decision, ctx.runtime.catalog, selected)
    return plan


def _emit(ctx: RequestContext, entity: str, rows: Sequence[Record], connector: str) -> list[object]:
    key = ctx.runtime.keys.get(entity)
    if key and rows:
        # Keys come from the rows before masking: the audit trail records what really left.
        ctx.returned.setdefault(entity, []).extend(keys_of(rows, key))
    # The entity's decision filtered the rows; the record type's decision governs their fields.
    type_name = ctx.runtime.record_types.get(entity, entity)
    return materialize(rows, ctx.runtime.types[type_name], _plan(ctx, connector, type_name))


def _emit_groups(ctx: RequestContext, entity: str, groups: Sequence[Sequence[Record]], connector: str) -> list[object]:
    """:func:`_emit` for every key's group of a related fetch, in one pass (not one per key)."""
    objects = _emit(ctx, entity, [row for group in groups for row in group], connector)
    rows = sum(map(len, groups))
    if len(objects) != rows:
        # Sliced by count: a missing or extra object would attach records to the wrong parent.
        raise RuntimeError(f"{entity}: {len(objects)} objects for {rows} rows")
    out: list[object] = []
    start = 0
    for group in groups:  # slices, not a next() per object: a page of 100 has hundreds
        end = start + len(group)
        out.append(objects[start:end])
        start = end
    return out


def emit_records(ctx: RequestContext, connector: str, entity: str, rows: Sequence[Record]) -> list[object]:
    """Materialise records that did not come through a loader (e.g. the audit trail) under the decision."""
    return _emit(ctx, entity, rows, connector)


def check_coordinate(ctx: RequestContext, connector: str, entity: str, coordinate: str) -> Decision:
    """The decision governing a root or link field; raises its error when the field is denied."""
    decision = ctx.decision(connector, entity)
    if not decision.allow:
        raise _denial(decision)
    rule = decision.rule(coordinate)
    if rule is not None and rule.action == "deny":
        raise coded_error(rule.code)
    return decision


def _request(
    ctx: RequestContext,
    connector: str,
    entity: str,
    keys: Sequence[str],
    by: str | None,
    args: Mapping[str, JSON],
) -> FetchRequest:
    decision = ctx.decision(connector, entity)
    return FetchRequest(
        entity=entity,
        keys=list(keys),
        fields=ctx.fields.get((connector, entity)),
        row_filter=decision.filter or {},
        by=by,
        args=args,
        limit=decision.max_rows,
    )


def _loader(
    ctx: RequestContext, connector: str, entity: str, by: str | None, args: Mapping[str, JSON]
) -> BatchLoader[str, object]:
    args_key = repr(sorted(args.items()))
    cache_key = (connector, entity, by, args_key)
    found = ctx.loaders.get(cache_key)
    if found is not None:
        return found
    source = ctx.runtime.connectors[connector]

    async def batch(keys: list[str]) -> list[object]:
        decision = ctx.decision(connector, entity)
        if not decision.allow:
            return [_denial(decision)] * len(keys)
        request = _request(ctx, connector, entity, keys, by, args)
        try:
            if by is None:
                rows = await _call(ctx, connector, lambda: source.fetch_many(request))
                found = iter(_emit(ctx, entity, [r for r in rows if r is not None], connector))
                return [next(found) if r is not None else None for r in rows]
            groups = await _call(ctx, connector, lambda: source.fetch_related(request))
            return _emit_groups(ctx, entity, _within(ctx, connector, entity, groups, request.limit), connector)
        except GraphQLError as error:
            return [error] * len(keys)

    loader: BatchLoader[str, object] = BatchLoader(batch)
    if not ctx.loaders.closed:  # after the response, a kept loader would only be a cycle again
        ctx.loaders[cache_key] = loader
    return loader


#: Records connectors returned past a related list's ``max_rows`` or a page's size, cut here.
CUT = Counter(
    "citygraph_connector_rows_cut",
    "Records a connector returned past max_rows or the page size",
    ["connector", "entity"],
)
_WARNED: set[tuple[str, str]] = set()  # (connector, entity) pairs logged once per process


def _over(ctx: RequestContext, connector: str, entity: str, limit: int, extra: int) -> None:
    """Count records cut from what a connector returned; log the first time per (connector, entity)."""
    CUT.labels(connector, entity).inc(extra)
    if (connector, entity) not in _WARNED:
        _WARNED.add((connector, entity))
        log.warning(
            "connector returned more records than asked for; cut (counted in citygraph_connector_rows_cut_total)",
            connector=connector, entity=entity, limit=limit, request_id=ctx.request_id,
        )  # fmt: skip


def _within(
    ctx: RequestContext, connector: str, entity: str, groups: Sequence[Sequence[Record]], limit: int | None
) -> Sequence[Sequence[Record]]:
    """``groups`` held to the decision's ``max_rows`` per parent key. Connectors apply it (and
    should in their backend); this is the gateway's own guarantee that a connector that does not
    cannot hand out more than the policy allows."""
    if limit is None or all(len(group) <= limit for group in groups):
        return groups
    _over(ctx, connector, entity, limit, sum(max(len(group) - limit, 0) for group in groups))
    return [group[:limit] for group in groups]


async def _ready(results: list[object]) -> list[object]:
    return results


def first(results: Sequence[object]) -> object | None:
    """The one result of a batch helper called for a single parent; a failure is raised."""
    (result,) = results
    if isinstance(result, BaseException):
        raise result  # the loader hands errors out with the traceback they were kept with
    return result


async def load_one(ctx: RequestContext, connector: str, entity: str, key: str) -> object | None:
    """The record of ``entity`` with primary key ``key`` visible under the decision, or None."""
    result: object | None = await _loader(ctx, connector, entity, None, {}).load(key)
    return result


def load_many(ctx: RequestContext, connector: str, entity: str, keys: Sequence[str | None]) -> Awaitable[list[object]]:
    """:func:`load_one` for many keys at once (a batch link field): one result per key, a record,
    ``None`` (no record, or no key) or the error that field gets; no coroutine per key. The keys
    are queued when this is called, so they join the batch of the per-item loads of that level."""
    return _loader(ctx, connector, entity, None, {}).load_many(keys)


async def load_entity(ctx: RequestContext, entity: str, key: str, coordinate: str) -> object | None:
    """A shared entity (``Enterprise``) by key, from the connector that owns it."""
    return first(await load_entities(ctx, entity, [key], coordinate))


def load_entities(ctx: RequestContext, entity: str, keys: Sequence[str], coordinate: str) -> Awaitable[list[object]]:
    """:func:`load_entity` for many keys at once, results as :func:`load_many`'s; a denied
    coordinate raises here."""
    owner = ctx.runtime.owners.get(entity)
    if owner is None:
        raise coded_error("FORBIDDEN", f"No connector serves {entity} here.")
    check_coordinate(ctx, owner, entity, coordinate)
    if owner not in ctx.runtime.connectors and entity in ctx.runtime.references:
        reference = ctx.runtime.references[entity]  # subgraph mode: the router asks the owner
        return _ready([reference(k) for k in keys])
    return load_many(ctx, owner, entity, keys)


async def load_related(
    ctx: RequestContext,
    connector: str,
    entity: str,
    by: str,
    key: str,
    args: Mapping[str, JSON] | None = None,
) -> list[object]:
    """The records of ``entity`` related to ``key`` through ``by``, batched across parents."""
    result = await _loader(ctx, connector, entity, by, args or {}).load(key)
    return result if isinstance(result, list) else []


def load_related_many(
    ctx: RequestContext,
    connector: str,
    entity: str,
    by: str,
    keys: Sequence[str],
    args: Mapping[str, JSON] | None = None,
) -> Awaitable[list[object]]:
    """:func:`load_related` for many parents at once: per key a list of records or an error. The
    keys are queued when this is called."""
    pending = _loader(ctx, connector, entity, by, args or {}).load_many(keys)

    async def lists() -> list[object]:
        return [r if isinstance(r, list | BaseException) else [] for r in await pending]

    return lists()


async def search_page(
    ctx: RequestContext,
    connector: str,
    entity: str,
    *,
    where: Mapping[str, JSON],
    first: int,
    after: str | None,
) -> tuple[list[object], Page]:
    """One page of ``entity`` under the decision's row filter and ``max_rows`` obligation."""
    decision = ctx.decision(connector, entity)
    if not decision.allow:
        raise _denial(decision)
    cap = decision.max_rows
    limit = min(first, ctx.runtime.max_page_size, cap if cap is not None else ctx.runtime.max_page_size)
    request = SearchRequest(
        entity=entity,
        fields=ctx.fields.get((connector, entity)),
        row_filter=decision.filter or {},
        where=where,
        first=limit,
        after=after,
    )
    source = ctx.runtime.connectors.get(connector)
    if source is None:  # subgraph mode: another subgraph serves this connector
        raise unavailable(connector)
    page = await _call(ctx, connector, lambda: source.search(request))
    if len(page.records) > limit:  # the page size carries max_rows: held to it as related lists are
        _over(ctx, connector, entity, limit, len(page.records) - limit)
        page = Page(records=page.records[:limit], cursors=page.cursors[:limit], has_next_page=True)
    return _emit(ctx, entity, page.records, connector), page


__all__ = [
    "check_coordinate",
    "emit_records",
    "first",
    "load_entities",
    "load_entity",
    "load_many",
    "load_one",
    "load_related",
    "load_related_many",
    "search_page",
]
