"""SQLite and PostgreSQL give the same answers: every connector call below runs against the SQLite
demo and against the same rows in PostgreSQL (``tests/postgres.py``), and the results must be
equal, order, types and errors included. Each case names the difference it guards against."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from connectors.base import JSON, FetchRequest, Page, SearchRequest
from connectors.credit import CreditConnector
from connectors.credit.tables import credit_profiles
from connectors.errors import ConnectorError, FilterError
from connectors.license import LicenseConnector
from connectors.sql import encode_cursor
from policies.ucast import MAX_VALUES, matches, to_sqlalchemy
from tests.postgres import PgDemo, PgServer, throwaway_database
from tests.schema import test_policy_units as policy_units


@dataclass(frozen=True)
class Sample:
    """Keys of the demo data, read from the SQLite file (the PostgreSQL copy has the same rows)."""

    usccs: list[str]  # with records, across districts
    record_ids: list[str]
    id_numbers: list[str]
    licence_numbers: list[str]
    industry: str  # a two-character industry code prefix, upper-case


@pytest.fixture(scope="module")
def sample(demo_dir: Path) -> Sample:
    with sqlite3.connect(demo_dir / "license.sqlite") as conn:
        id_numbers = [r[0] for r in conn.execute("SELECT id_number FROM persons ORDER BY id_number LIMIT 8")]
        numbers = [r[0] for r in conn.execute("SELECT number FROM licenses ORDER BY random() LIMIT 40")]
        industry = conn.execute("SELECT substr(industry_code, 1, 2) FROM enterprises LIMIT 1").fetchone()[0]
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        usccs = [r[0] for r in conn.execute("SELECT uscc FROM credit_records GROUP BY uscc ORDER BY count(*) DESC")]
        ids = [str(r[0]) for r in conn.execute("SELECT id FROM credit_records ORDER BY random() LIMIT 30")]
    return Sample(usccs[:40], ids, id_numbers, numbers, industry)


Call = Callable[[Any, Sample], Awaitable[object]]


def fetch(entity: str, keys: list[str], row_filter: Mapping[str, JSON] | None = None, **kw: Any) -> FetchRequest:
    return FetchRequest(entity=entity, keys=keys, fields=None, row_filter=row_filter or {}, **kw)


def field(name: str, operator: str, value: JSON) -> dict[str, JSON]:
    return {"type": "field", "field": name, "operator": operator, "value": value}


async def walk(connector: Any, entity: str, row_filter: Mapping[str, JSON], **where: JSON) -> list[object]:
    """Every page of a search, 7 at a time: records and cursors in order."""
    out: list[object] = []
    after = None
    while True:
        page: Page = await connector.search(
            SearchRequest(entity=entity, fields=None, row_filter=row_filter, where=where, first=7, after=after)
        )
        out += [*page.records, *page.cursors]
        if not page.has_next_page:
            return out
        after = page.end_cursor


PUBLIC: dict[str, JSON] = {
    "type": "compound",
    "operator": "and",
    "value": [
        field("credit_records.publicity_start", "lte", "2025-06-30"),
        field("credit_records.publicity_end", "gte", "2025-06-30"),
    ],
}

CREDIT: dict[str, Call] = {
    # dates bind as DATE on PostgreSQL and compare as ISO text on SQLite
    "records-by-date-filter": lambda c, s: walk(c, "CreditRecord", PUBLIC),
    "records-where": lambda c, s: walk(
        c, "CreditRecord", {}, kinds=["ADMINISTRATIVE_PENALTY", "BLACK_LIST"], decided_from="2023-01-01"
    ),
    # district officer: the row filter's IN list, keyset cursors (decision_date, id)
    "records-district-in": lambda c, s: walk(
        c, "CreditRecord", field("credit_records.district_code", "in", ["330203", "330212"])
    ),
    "records-authority": lambda c, s: walk(c, "CreditRecord", {}, authority="宁波市交通运输局"),
    # Numeric amounts come back as Decimal with two places on both
    "records-by-id": lambda c, s: c.fetch_many(fetch("CreditRecord", [*s.record_ids, "0", "x", "9" * 20, "²"])),
    # the window function capping each enterprise's records (max_rows), and its order
    "related-capped": lambda c, s: c.fetch_related(fetch("CreditRecord", s.usccs, by="uscc", limit=2)),
    "related-all-filtered": lambda c, s: c.fetch_related(
        fetch("CreditRecord", s.usccs, field("credit_records.kind", "nin", ["RED_LIST"]), by="uscc")
    ),
    "related-kinds": lambda c, s: c.fetch_related(
        fetch("CreditRecord", s.usccs, by="uscc", args={"kinds": ["ADMINISTRATIVE_LICENSE"]}, limit=3)
    ),
    # timestamptz: aware UTC datetimes on both (SQLite stores naive UTC text)
    "profiles": lambda c, s: c.fetch_many(fetch("CreditProfile", s.usccs, field("credit_profiles.rating", "ne", "D"))),
    # startswith is substr(), case-sensitive on both
    "subjects-startswith": lambda c, s: c.fetch_many(
        fetch("Enterprise", s.usccs, field("credit_subjects.uscc", "startswith", s.usccs[0][:8]))
    ),
    "subjects-not-or": lambda c, s: c.fetch_many(
        fetch(
            "Enterprise",
            s.usccs,
            {
                "type": "compound",
                "operator": "not",
                "value": [
                    {
                        "type": "compound",
                        "operator": "or",
                        "value": [
                            field("credit_subjects.district_code", "eq", "330203"),
                            field("credit_subjects.district_code", "gt", "330281"),
                        ],
                    }
                ],
            },
        )
    ),
    # a cursor id past PostgreSQL's 32-bit INTEGER must not overflow the parameter
    "cursor-past-int32": lambda c, s: c.search(
        SearchRequest(entity="CreditRecord", fields=None, row_filter={}, after=encode_cursor("2100-01-01", 2**40))
    ),
    # more keys than asyncpg's 32767 parameters: one array parameter on PostgreSQL
    "forty-thousand-keys": lambda c, s: c.fetch_many(fetch("CreditRecord", [str(i) for i in range(1, 40_001)])),
    # NUL: PostgreSQL text cannot hold it, so it matches nothing rather than failing the statement
    "nul-in-keys": lambda c, s: c.fetch_many(fetch("Enterprise", [s.usccs[0], s.usccs[1] + "\x00"])),
    "nul-in-where": lambda c, s: walk(c, "CreditRecord", {}, district="330203\x00"),
    "nul-in-cursor": lambda c, s: c.search(
        SearchRequest(entity="CreditRecord", fields=None, row_filter={}, after=encode_cursor("2025-01-01\0", 1))
    ),
    "nul-in-row-filter": lambda c, s: c.fetch_many(
        fetch("Enterprise", s.usccs, field("credit_subjects.district_code", "in", ["330203\x00"]))
    ),
    "lone-surrogate-in-keys": lambda c, s: c.fetch_many(fetch("Enterprise", ["\ud800", s.usccs[0]])),
    "too-many-filter-values": lambda c, s: c.fetch_many(
        fetch("Enterprise", s.usccs, field("credit_subjects.uscc", "in", [str(i) for i in range(MAX_VALUES + 1)]))
    ),
}


async def licences_of(c: Any, s: Sample, by: str, keys: list[str], **kw: Any) -> object:
    return await c.fetch_related(fetch("License", keys, by=by, **kw))


async def verdicts(c: Any, s: Sample) -> object:
    results = await c.fetch_many(fetch("LicenseVerification", [*s.licence_numbers, "NO-SUCH", "a\x00"]))
    return [{k: v for k, v in r.items() if k != "checked_at"} for r in results]  # checked_at is the clock


LICENSE: dict[str, Call] = {
    "enterprises-by-district": lambda c, s: walk(c, "Enterprise", field("enterprises.district_code", "eq", "330212")),
    "enterprises-status": lambda c, s: walk(c, "Enterprise", {}, status="REVOKED"),
    # LIKE: SQLite ignores ASCII case, PostgreSQL does not: industry codes are matched upper-cased
    "industry-prefix-lower-case": lambda c, s: walk(c, "Enterprise", {}, industry_code=s.industry.lower()),
    "industry-prefix-wildcards": lambda c, s: walk(c, "Enterprise", {}, industry_code="_%"),
    # names: ILIKE on PostgreSQL, lower() LIKE lower() on SQLite; % and _ are escaped on both
    "name-contains": lambda c, s: walk(c, "Enterprise", {}, name="科技"),
    "name-ascii-case": lambda c, s: walk(c, "Enterprise", {}, name="Led"),
    "name-wildcards-escaped": lambda c, s: walk(c, "Enterprise", {}, name="%_\\"),
    "name-nul": lambda c, s: walk(c, "Enterprise", {}, name="科技\x00"),
    "persons": lambda c, s: c.fetch_many(fetch("Person", [*s.id_numbers, "bad"])),
    "licences-by-number": lambda c, s: c.fetch_many(
        fetch("License", s.licence_numbers, field("licenses.status", "in", ["VALID", "SUSPENDED"]))
    ),
    # ties on issued_on go by number, bytewise, whatever the server's collation
    "licences-of-enterprises": lambda c, s: licences_of(c, s, "holder_uscc", s.usccs),
    "licences-of-persons-capped": lambda c, s: licences_of(
        c, s, "holder_id_number", s.id_numbers, limit=1, args={"status": "VALID"}
    ),
    "verification": verdicts,
}


@pytest.fixture
async def connectors(demo_dir: Path, pg_demo: PgDemo) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Both connectors on both backends, opened."""
    opened: dict[str, dict[str, Any]] = {
        "sqlite": {
            "credit": CreditConnector(f"sqlite+aiosqlite:///{demo_dir / 'credit.sqlite'}"),
            "license": LicenseConnector(f"sqlite+aiosqlite:///{demo_dir / 'license.sqlite'}"),
        },
        "postgresql": {"credit": CreditConnector(pg_demo.credit), "license": LicenseConnector(pg_demo.license)},
    }
    for pair in opened.values():
        for connector in pair.values():
            await connector.open()
    yield opened
    for pair in opened.values():
        for connector in pair.values():
            await connector.aclose()


async def outcome(call: Call, connector: Any, sample: Sample) -> object:
    """The result, or the error's type and message (errors must match too)."""
    try:
        return await call(connector, sample)
    except (ConnectorError, FilterError) as exc:
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize(
    ("name", "case"), [("credit", c) for c in CREDIT] + [("license", c) for c in LICENSE], ids=lambda v: str(v)
)
async def test_same_answer_on_both_backends(
    connectors: dict[str, dict[str, Any]], sample: Sample, name: str, case: str
) -> None:
    call = (CREDIT if name == "credit" else LICENSE)[case]
    on_sqlite = await outcome(call, connectors["sqlite"][name], sample)
    on_postgres = await outcome(call, connectors["postgresql"][name], sample)
    assert on_sqlite == on_postgres
    # Not vacuous: "ConnectorUnavailable" would mean a statement failed on both.
    assert not (isinstance(on_sqlite, tuple) and on_sqlite and on_sqlite[0] == "ConnectorUnavailable")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_pages_of_a_search_share_its_statements(connectors: dict[str, dict[str, Any]], backend: str) -> None:
    """A search's statement is built once per shape, its values (conditions, cursor, page size)
    bound at execution: every page of a list, and the next list of that shape with other values,
    reuse it, and each finds its own rows."""
    credit, license_ = connectors[backend]["credit"], connectors[backend]["license"]
    built = len(credit._statements), len(license_._statements)
    await walk(credit, "CreditRecord", {}, district="330203", decided_from="2024-01-01")
    await walk(license_, "Enterprise", {}, district="330203", status="EXISTING")
    # Two shapes each: the first page, and the pages after a cursor.
    assert (len(credit._statements) - built[0], len(license_._statements) - built[1]) == (2, 2)
    pages = await walk(credit, "CreditRecord", {}, district="330212", decided_from="2024-06-01")
    records = [r for r in pages if isinstance(r, dict)]  # walk() lists cursors too
    pages = await walk(license_, "Enterprise", {}, district="330212", status="EXISTING")
    enterprises = [r for r in pages if isinstance(r, dict)]
    assert (len(credit._statements) - built[0], len(license_._statements) - built[1]) == (2, 2)
    assert len(records) > 7 and len(enterprises) > 7  # more than one page each
    assert all(r["district_code"] == "330212" and r["decision_date"] >= dt.date(2024, 6, 1) for r in records)
    assert all(r["district_code"] == "330212" and r["status"] == "EXISTING" for r in enterprises)


async def test_cases_are_not_vacuous(connectors: dict[str, dict[str, Any]], sample: Sample) -> None:
    """The cases above find rows where they should, so their equality means something."""
    credit = connectors["postgresql"]["credit"]
    assert len(await CREDIT["records-district-in"](credit, sample)) > 20  # type: ignore[arg-type]
    assert any(r is not None for r in await CREDIT["records-by-id"](credit, sample))  # type: ignore[attr-defined]
    capped = await CREDIT["related-capped"](credit, sample)
    assert {len(group) for group in capped} == {2}  # type: ignore[attr-defined]
    license_ = connectors["postgresql"]["license"]
    assert await LICENSE["industry-prefix-lower-case"](license_, sample)
    assert await LICENSE["name-contains"](license_, sample)
    refused = await outcome(CREDIT["nul-in-row-filter"], credit, sample)
    assert refused == ("FilterError", "filter value holds characters no database text can store")


@pytest.mark.parametrize("offset", [8, 0, None])
async def test_timestamp_filters_compare_in_utc(
    connectors: dict[str, dict[str, Any]], demo_dir: Path, offset: int | None
) -> None:
    """A row filter on a timestamptz column means the same instant whatever the offset it is
    written with (naive means UTC), on both backends: SQLite stores naive UTC text and compares
    text, so an offset left in place would move the bound by hours."""
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        uscc, stored = conn.execute("SELECT uscc, assessed_at FROM credit_profiles ORDER BY uscc LIMIT 1").fetchone()
    instant = dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC)
    if offset is None:
        spelling = instant.replace(tzinfo=None).isoformat()
    else:
        spelling = instant.astimezone(dt.timezone(dt.timedelta(hours=offset))).isoformat()
    fields = {"credit_profiles.assessed_at": credit_profiles.c.assessed_at}
    found: dict[str, dict[str, list[str]]] = {}
    for backend in ("sqlite", "postgresql"):
        found[backend] = {}
        for operator in ("lt", "lte"):
            where = to_sqlalchemy(field("credit_profiles.assessed_at", operator, spelling), fields)
            rows = await connectors[backend]["credit"]._rows(select(credit_profiles.c.uscc).where(where))
            found[backend][operator] = sorted(str(r["uscc"]) for r in rows)
        # The profile assessed at exactly that instant is the one row between "lt" and "lte".
        assert sorted(set(found[backend]["lte"]) - set(found[backend]["lt"])) == [uscc], backend
    assert found["sqlite"] == found["postgresql"]


@pytest.fixture(scope="module")
def pg_rows(pg_server: PgServer) -> Iterator[tuple[asyncio.AbstractEventLoop, AsyncConnection]]:
    """One PostgreSQL connection, held across hypothesis examples, to a database with ``rows``."""
    with throwaway_database(pg_server, "ucast") as url:
        loop = asyncio.new_event_loop()
        engine = create_async_engine(url)
        conn = loop.run_until_complete(engine.connect())
        try:
            loop.run_until_complete(conn.run_sync(policy_units.meta.create_all))
            loop.run_until_complete(conn.commit())
            yield loop, conn
        finally:
            loop.run_until_complete(conn.close())
            loop.run_until_complete(engine.dispose())
            loop.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(st.tuples(policy_units.districts, policy_units.days), max_size=12),
    row_filter=policy_units.filters,
)
def test_row_filters_select_the_same_rows_on_postgresql_as_in_python(
    pg_rows: tuple[asyncio.AbstractEventLoop, AsyncConnection],
    data: list[tuple[str | None, dt.date | None]],
    row_filter: dict[str, Any],
) -> None:
    """The property ``tests/schema/test_policy_units.py`` proves on SQLite, on PostgreSQL: random
    filters (and/or/not, in/nin with [], startswith, dates, NULLs) select what the Python evaluator does."""
    loop, conn = pg_rows
    rows = policy_units.rows

    async def in_sql() -> set[int]:
        try:
            if data:
                values = [{"id": i, "district": d, "day": day} for i, (d, day) in enumerate(data)]
                await conn.execute(rows.insert(), values)
            where = to_sqlalchemy(row_filter, policy_units.FIELDS)
            return {r[0] for r in await conn.execute(select(rows.c.id).where(where))}
        finally:
            await conn.rollback()

    in_python = {
        i
        for i, (d, day) in enumerate(data)
        if matches(row_filter, lambda name, d=d, day=day: {"rows.district": d, "rows.day": day}[name])  # type: ignore[misc]
    }
    assert loop.run_until_complete(in_sql()) == in_python
