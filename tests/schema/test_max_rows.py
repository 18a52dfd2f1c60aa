"""The policy's ``max_rows`` holds even for a connector that ignores it: the gateway cuts each
related list and each page, counts and logs the connector, and audits only what it returned."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from audit import AuditTrail
from connectors.base import FetchRequest, Page, SearchRequest
from policies.engine import StaticPolicyEngine
from policies.principal import Principal, Purpose
from resolvers import loaders
from resolvers.context import RequestContext
from schema.builder import BuiltSchema, build_schema
from schema.limits import Limits
from tests.schema.test_compiled import USCCS, FakeCredit, build_both, record

QUERY = "{ creditRecords(first: 24) { nodes { id enterprise { uscc credit { records { id } } } } } }"


def capped(doc: Mapping[str, Any]) -> object:
    return {"allow": True, "filter": {}, "obligations": {"max_rows": 2}}


class Careless(FakeCredit):
    """Ignores the page size as the fake already ignores ``limit`` on related reads."""

    async def search(self, request: SearchRequest) -> Page:
        page = await super().search(SearchRequest(request.entity, request.fields, request.row_filter, first=10**6))
        return Page(page.records, list(page.cursors), has_next_page=False)


def cut(entity: str) -> float:
    labels = {"connector": "credit", "entity": entity}
    return REGISTRY.get_sample_value("citygraph_connector_rows_cut_total", labels) or 0.0


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[BuiltSchema, RequestContext]]:
    monkeypatch.setattr(loaders, "_WARNED", set())  # logged once per process: fresh for this test
    records = [record(i) for i in range(24) if i not in (3, 5, 7, 9, 11, 13, 15, 17, 19)]  # no surprises
    _, _, shared = build_both(records, tmp_path)
    connector = Careless(shared.connectors["credit"].records)  # type: ignore[attr-defined]
    every = await connector.fetch_related(FetchRequest("CreditRecord", USCCS, None, {}, by="uscc", limit=2))
    assert max(map(len, every)) > 2  # the fake ignores the limit: it hands out every record
    assert len((await connector.search(SearchRequest("CreditRecord", None, {}, first=2))).records) > 2
    built = build_schema({"credit": connector}, Limits(max_cost=10**9), compiled=True)
    audit = AuditTrail(f"sqlite+aiosqlite:///{tmp_path / 'cut.sqlite'}")
    runtime = built.runtime({"credit": connector}, StaticPolicyEngine(capped), audit, {"credit": 5})
    principal = Principal("t", "market_supervision", frozenset({"staff"}), frozenset(), 4)
    ctx = RequestContext(runtime=runtime, principal=principal, purpose=Purpose("law_enforcement"), request_id="r")
    await audit.open()
    try:
        yield built, ctx
    finally:
        ctx.close()
        await audit.aclose()


async def test_pages_and_related_lists_are_cut_to_max_rows(served: tuple[BuiltSchema, RequestContext]) -> None:
    built, ctx = served
    before = cut("CreditRecord")
    with structlog.testing.capture_logs() as logs:
        result = await built.schema.execute(QUERY, context_value=ctx)
    assert result.errors is None
    connection = result.data["creditRecords"]  # type: ignore[index]
    nodes = connection["nodes"]
    assert len(nodes) == 2  # the page: the connector returned every record
    lists = [n["enterprise"]["credit"]["records"] for n in nodes if n["enterprise"]["credit"]]
    assert lists and all(len(records) <= 2 for records in lists) and any(len(r) == 2 for r in lists)
    # Counted every time, logged once per (connector, entity).
    warnings = [e for e in logs if e["event"].startswith("connector returned more records than asked for")]
    assert [(e["connector"], e["entity"], e["limit"]) for e in warnings] == [("credit", "CreditRecord", 2)]
    assert cut("CreditRecord") - before >= 24 - 9 - 2  # at least the page's extra records
    # What the trail will record is what left: the page's records and the ones kept per enterprise.
    returned = {n["id"] for n in nodes} | {r["id"] for records in lists for r in records}
    assert set(ctx.returned["CreditRecord"]) == returned


async def test_a_cut_page_says_more_follow(served: tuple[BuiltSchema, RequestContext]) -> None:
    built, ctx = served
    query = "{ creditRecords(first: 24) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"
    result = await built.schema.execute(query, context_value=ctx)
    assert result.errors is None
    connection = result.data["creditRecords"]  # type: ignore[index]
    assert len(connection["edges"]) == 2 and connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
