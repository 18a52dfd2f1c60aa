"""The policy's ``max_rows`` holds per parent key even for a connector that ignores it: the
gateway cuts each related list, logs the connector, and audits only the records it returned."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from audit import AuditTrail
from connectors.base import FetchRequest
from policies.engine import StaticPolicyEngine
from policies.principal import Principal, Purpose
from resolvers.context import RequestContext
from schema.builder import build_schema
from schema.limits import Limits
from tests.schema.test_compiled import USCCS, FakeCredit, build_both, record

QUERY = "{ creditRecords(first: 24) { nodes { id enterprise { uscc credit { records { id } } } } } }"


def capped(doc: Mapping[str, Any]) -> object:
    return {"allow": True, "filter": {}, "obligations": {"max_rows": 2}}


async def test_related_lists_are_cut_to_max_rows_when_the_connector_returns_more(tmp_path: Path) -> None:
    records = [record(i) for i in range(24) if i not in (3, 5, 7, 9, 11, 13, 15, 17, 19)]  # no surprises
    _, _, shared = build_both(records, tmp_path)
    connector = shared.connectors["credit"]
    assert isinstance(connector, FakeCredit)
    every = await connector.fetch_related(FetchRequest("CreditRecord", USCCS, None, {}, by="uscc", limit=2))
    assert max(map(len, every)) > 2  # the fake ignores the limit: it hands out every record
    built = build_schema({"credit": connector}, Limits(max_cost=10**9), compiled=True)
    audit = AuditTrail(f"sqlite+aiosqlite:///{tmp_path / 'cut.sqlite'}")
    runtime = built.runtime({"credit": connector}, StaticPolicyEngine(capped), audit, {"credit": 5})
    await audit.open()
    try:
        principal = Principal("t", "market_supervision", frozenset({"staff"}), frozenset(), 4)
        ctx = RequestContext(runtime=runtime, principal=principal, purpose=Purpose("law_enforcement"), request_id="r")
        with structlog.testing.capture_logs() as logs:
            result = await built.schema.execute(QUERY, context_value=ctx)
        assert result.errors is None
        nodes = result.data["creditRecords"]["nodes"]  # type: ignore[index]
        assert len(nodes) == 2  # the page: first is held to max_rows by the search itself
        lists = [n["enterprise"]["credit"]["records"] for n in nodes if n["enterprise"]["credit"]]
        assert lists and all(len(records) <= 2 for records in lists) and any(len(r) == 2 for r in lists)
        cut = [e for e in logs if e["event"].startswith("connector returned more than max_rows")]
        assert cut and cut[0]["connector"] == "credit" and cut[0]["max_rows"] == 2
        # What the trail will record is what left: the page's records and the ones kept per enterprise.
        returned = {n["id"] for n in nodes} | {r["id"] for records in lists for r in records}
        assert set(ctx.returned["CreditRecord"]) == returned
    finally:
        ctx.close()
        await audit.aclose()
