"""PostgreSQL plans the policy-filtered queries with the indexes of ``tables.py`` (and so of the migrations).

The demo at scale 300 fits in a few pages, where a sequential scan is the right plan; this module
migrates its own database and fills it with 100 000 credit records and 20 000 enterprises
(synthetic, by ``generate_series``; enterprises not stored in USCC order, as in a table that grew
over years), analyses it, captures the exact statements the connectors send for a district
officer's page, an enterprise's records and the license store's page by district, and EXPLAINs
them with their parameters. No planner setting is changed (no ``enable_seqscan = off``): these
are the plans production gets at that size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import FetchRequest, SearchRequest
from connectors.credit import CreditConnector
from connectors.license import LicenseConnector
from connectors.migrate import migrate
from tests.postgres import PgServer, execute, throwaway_database

DISTRICTS = "ARRAY['330203','330205','330206','330211','330212','330213','330225','330226','330281','330282']"
SUBJECTS, RECORDS = 20_000, 100_000

FILL = [
    f"""INSERT INTO credit_subjects (uscc, name, district_code)
        SELECT 'S' || lpad(i::text, 17, '0'), 'enterprise ' || i, ({DISTRICTS})[1 + i % 10]
        FROM generate_series(1, {SUBJECTS}) AS i""",
    # Each record belongs to a pseudo-random subject and carries its district, like the demo.
    f"""INSERT INTO credit_records (uscc, kind, title, content, authority, decision_number, decision_date,
            publicity_start, publicity_end, district_code, amount, legal_rep_name, legal_rep_id_number)
        SELECT 'S' || lpad(s::text, 17, '0'),
               (ARRAY['RED_LIST','BLACK_LIST','ABNORMAL_OPERATION','ADMINISTRATIVE_PENALTY',
                      'ADMINISTRATIVE_LICENSE'])[1 + i % 5],
               'title', 'content', 'authority', 'no. ' || i, d, d, d + 365, ({DISTRICTS})[1 + s % 10],
               NULL, 'name', '330203199001011234'
        FROM generate_series(1, {RECORDS}) AS i,
             LATERAL (SELECT 1 + (i * 7919) % {SUBJECTS} AS s, date '2021-01-01' + (i * 37) % 1800 AS d) AS x""",
    f"""INSERT INTO persons (id_number, name, birth_date, phone, address, district_code)
        SELECT lpad(i::text, 18, '0'), 'person', date '1980-01-01', '13800000000', 'address',
               ({DISTRICTS})[1 + i % 10]
        FROM generate_series(1, {SUBJECTS}) AS i""",
    f"""INSERT INTO enterprises (uscc, name, legal_rep_id_number, address, district_code, industry_code,
            industry_name, registered_capital, established_on, status, phone)
        SELECT 'S' || lpad(e::text, 17, '0'), 'enterprise ' || e, lpad(e::text, 18, '0'), 'address',
               ({DISTRICTS})[1 + e % 10], 'C3481', 'industry', 1000000, date '2010-01-01', 'EXISTING',
               '057487000000'
        -- inserted out of USCC order, as years of registrations leave a real table
        FROM generate_series(1, {SUBJECTS}) AS i, LATERAL (SELECT 1 + (i * 7919) % {SUBJECTS} AS e) AS x""",
    "ANALYZE",
]


@pytest.fixture(scope="module")
def big_db(pg_server: PgServer) -> Iterator[str]:
    """A migrated database with enough rows that index plans must win on cost."""
    with throwaway_database(pg_server, "explain") as url:
        migrate("credit", url)
        migrate("license", url)

        async def fill() -> None:
            for statement in FILL:
                await execute(url, statement)

        asyncio.run(fill())
        yield url


@pytest.fixture
async def connectors(big_db: str) -> AsyncIterator[tuple[CreditConnector, LicenseConnector]]:
    credit, license_ = CreditConnector(big_db), LicenseConnector(big_db)
    await credit.open()
    await license_.open()
    yield credit, license_
    await credit.aclose()
    await license_.aclose()


async def plan_of(engine: AsyncEngine, call: Callable[[], Awaitable[object]]) -> dict[str, Any]:
    """The plan PostgreSQL makes for the one statement ``call`` sends, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        await call()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    [(statement, parameters)] = sent
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        document = result.scalar_one()
    plans = orjson.loads(document) if isinstance(document, str) else document
    plan: dict[str, Any] = plans[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a plan, depth first."""
    return [plan, *(n for child in plan.get("Plans", []) for n in nodes(child))]


def scans(plan: dict[str, Any], relation: str) -> list[tuple[str, str | None]]:
    """(node type, index) of every scan reading ``relation`` (bitmap heap scans are named by their index scan)."""
    out = []
    for node in nodes(plan):
        if node.get("Relation Name") == relation and node["Node Type"] != "Bitmap Heap Scan":
            out.append((node["Node Type"], node.get("Index Name")))
        if node["Node Type"] == "Bitmap Index Scan" and node["Index Name"].startswith(f"ix_{relation}"):
            out.append((node["Node Type"], node["Index Name"]))
    return out


def district_officer(*districts: str) -> dict[str, Any]:
    return {"type": "field", "field": "credit_records.district_code", "operator": "in", "value": list(districts)}


async def test_district_officers_page_is_an_index_range_scan(connectors: tuple[CreditConnector, Any]) -> None:
    credit, _ = connectors
    request = SearchRequest(entity="CreditRecord", fields=None, row_filter=district_officer("330203"), first=50)
    plan = await plan_of(credit.engine, lambda: credit.search(request))
    # (district_code, decision_date, id) read backwards: already in page order, no sort, stops at the limit.
    assert scans(plan, "credit_records") == [("Index Scan", "ix_credit_records_district")]
    assert not any(n["Node Type"] == "Sort" for n in nodes(plan))


async def test_page_over_several_districts_uses_an_index(connectors: tuple[CreditConnector, Any]) -> None:
    credit, _ = connectors
    request = SearchRequest(
        entity="CreditRecord", fields=None, row_filter=district_officer("330203", "330212"), first=50
    )
    plan = await plan_of(credit.engine, lambda: credit.search(request))
    found = scans(plan, "credit_records")
    assert found and all(kind != "Seq Scan" for kind, _ in found), found
    assert {index for _, index in found} <= {"ix_credit_records_date", "ix_credit_records_district"}


async def test_records_of_enterprises_use_the_uscc_index(connectors: tuple[CreditConnector, Any]) -> None:
    credit, _ = connectors
    keys = ["S" + str(n).rjust(17, "0") for n in range(1, 20_000, 500)]
    request = FetchRequest(
        entity="CreditRecord",
        keys=keys,
        fields=None,
        row_filter=district_officer("330203", "330212"),
        by="uscc",
        limit=5,  # max_rows: the window per enterprise
    )
    plan = await plan_of(credit.engine, lambda: credit.fetch_related(request))
    found = scans(plan, "credit_records")
    assert found and {index for _, index in found} == {"ix_credit_records_uscc"}, found


async def test_license_store_page_by_district_is_an_index_range_scan(
    connectors: tuple[Any, LicenseConnector],
) -> None:
    _, license_ = connectors
    row_filter = {"type": "field", "field": "enterprises.district_code", "operator": "in", "value": ["330212"]}
    request = SearchRequest(entity="Enterprise", fields=None, row_filter=row_filter, first=100)
    plan = await plan_of(license_.engine, lambda: license_.search(request))
    assert scans(plan, "enterprises") == [("Index Scan", "ix_enterprises_district")]
    assert not any(n["Node Type"] == "Sort" for n in nodes(plan))
