"""Each credit policy rule, proven over real HTTP with real tokens against the demo database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.identifiers import is_valid_id_number
from tests.conftest import LiveServer, TokenFactory


@pytest.fixture(scope="module")
def live(live_each: LiveServer) -> LiveServer:
    """Every test here runs against the SQLite demo, then against the same data in PostgreSQL."""
    return live_each


TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
RECORDS = """query Records($first: Int, $after: String, $filter: CreditRecordFilter) {
  creditRecords(first: $first, after: $after, filter: $filter) {
    nodes { id kind title districtCode publicityEndsOn }
    pageInfo { hasNextPage endCursor }
  }
}"""


def db(demo_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(demo_dir / "credit.sqlite")


def all_ids(live: LiveServer, bearer: str | None, headers: dict[str, str] | None = None, **filters: Any) -> set[str]:
    """Page through creditRecords and return every id the principal can see."""
    ids: set[str] = set()
    after = None
    while True:
        response = live.post(
            RECORDS,
            bearer,
            variables={"first": 500, "after": after, "filter": filters or None},
            headers=headers,
        )
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        page = body["data"]["creditRecords"]
        ids |= {n["id"] for n in page["nodes"]}
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


def test_public_sees_only_records_in_their_publicity_period(live: LiveServer, demo_dir: Path) -> None:
    with db(demo_dir) as conn:
        running = {
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM credit_records WHERE publicity_start <= ? AND publicity_end >= ?",
                (TODAY, TODAY),
            )
        }
        total = conn.execute("SELECT count(*) FROM credit_records").fetchone()[0]
    assert 0 < len(running) < total  # the data set has records on both sides of the line
    assert all_ids(live, None) == running


def test_public_gets_l1_fields_only(live: LiveServer) -> None:
    body = live.post("{ creditRecords(first: 3) { nodes { title decisionNumber amount } } }").json()
    nodes = body["data"]["creditRecords"]["nodes"]
    assert nodes and all(n["title"] and n["decisionNumber"] is None and n["amount"] is None for n in nodes)
    codes = {(e["path"][-1], e["extensions"]["code"]) for e in body["errors"]}
    assert codes == {("decisionNumber", "FORBIDDEN"), ("amount", "FORBIDDEN")}


def test_market_supervision_sees_all_records_city_wide(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    with db(demo_dir) as conn:
        everything = {str(r[0]) for r in conn.execute("SELECT id FROM credit_records")}
    assert all_ids(live, token(dept="market_supervision")) == everything


def test_district_officer_sees_own_districts_only(live: LiveServer, token: TokenFactory, demo_dir: Path) -> None:
    mine = ["330203", "330212"]
    with db(demo_dir) as conn:
        expected = {
            str(r[0]) for r in conn.execute("SELECT id FROM credit_records WHERE district_code IN (?, ?)", mine)
        }
        others = conn.execute("SELECT count(*) FROM credit_records WHERE district_code NOT IN (?, ?)", mine).fetchone()
    assert expected and others[0] > 0
    bearer = token(dept="market_supervision", roles=["district_officer"], districts=mine)
    assert all_ids(live, bearer) == expected
    # Asking for another district explicitly yields nothing, not an error that leaks existence.
    assert all_ids(live, bearer, district="330281") == set()


@pytest.fixture
def statements(live: LiveServer) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement (text, parameters) the credit connector sends while the test runs."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    with live.on_statements("credit", record):
        yield seen


def test_district_filter_is_applied_in_sql(
    live: LiveServer, token: TokenFactory, statements: list[tuple[str, Any]]
) -> None:
    bearer = token(roles=["district_officer"], districts=["330206"])
    body = live.post("{ creditRecords(first: 20) { nodes { districtCode } } }", bearer).json()
    assert {n["districtCode"] for n in body["data"]["creditRecords"]["nodes"]} == {"330206"}
    [(sql, params)] = statements
    assert "credit_records.district_code IN" in sql
    assert "330206" in params and "330203" not in params  # a bound parameter, not text in the query


def test_enterprise_link_is_filtered_in_sql_too(
    live: LiveServer, token: TokenFactory, demo_dir: Path, statements: list[tuple[str, Any]]
) -> None:
    with db(demo_dir) as conn:
        uscc, count = conn.execute(
            "SELECT uscc, count(*) FROM credit_records GROUP BY uscc HAVING count(DISTINCT district_code) = 1 "
            "ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        district = conn.execute("SELECT district_code FROM credit_subjects WHERE uscc = ?", (uscc,)).fetchone()[0]
    other = "330203" if district != "330203" else "330205"
    query = '{ enterprise(uscc: "%s") { uscc credit { rating records { id } } } }' % uscc
    own = live.post(query, token(roles=["district_officer"], districts=[district])).json()
    assert len(own["data"]["enterprise"]["credit"]["records"]) == count
    assert any("district_code IN" in sql for sql, _ in statements)
    # Another district's officer does not even see the enterprise (the license store's rule),
    # and its records through the credit platform stay filtered too.
    foreign = live.post(query, token(roles=["district_officer"], districts=[other])).json()
    assert foreign == {"data": {"enterprise": None}}
    records = live.post(
        '{ creditRecords(filter: {uscc: "%s"}) { nodes { id } } }' % uscc,
        token(roles=["district_officer"], districts=[other]),
    ).json()
    assert records["data"]["creditRecords"]["nodes"] == []


IDS = "{ creditRecords(first: 5) { nodes { id legalRepName legalRepIdNumber } } }"


def test_l3_fields_masked_below_clearance_3(live: LiveServer, token: TokenFactory) -> None:
    body = live.post(IDS, token(dept="market_supervision", clearance=2)).json()
    assert "errors" not in body
    for node in body["data"]["creditRecords"]["nodes"]:
        masked = node["legalRepIdNumber"]
        assert len(masked) == 18 and masked[6:14] == "********" and masked[3:14] == "*" * 11
        assert masked[14:].replace("X", "0").isdigit()
        assert node["legalRepName"][0] != "*" and set(node["legalRepName"][1:]) == {"*"}


def test_l3_fields_without_purpose_are_refused(live: LiveServer, token: TokenFactory) -> None:
    body = live.post(IDS, token(dept="market_supervision", clearance=3)).json()
    nodes = body["data"]["creditRecords"]["nodes"]
    assert nodes and all(n["id"] and n["legalRepIdNumber"] is None for n in nodes)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"PURPOSE_REQUIRED"}


def test_l3_fields_with_clearance_3_and_purpose_are_shown(live: LiveServer, token: TokenFactory) -> None:
    # Non-ASCII header values travel as UTF-8 bytes.
    headers: dict[str, Any] = {
        "X-Purpose-Of-Use": "law_enforcement",
        "X-Case-Ref": "甬市监案〔2026〕17号".encode(),
    }
    body = live.post(IDS, token(dept="market_supervision", clearance=3), headers=headers).json()
    assert "errors" not in body
    assert all(is_valid_id_number(n["legalRepIdNumber"]) for n in body["data"]["creditRecords"]["nodes"])


def test_unknown_purpose_is_not_a_purpose(live: LiveServer, token: TokenFactory) -> None:
    body = live.post(
        IDS, token(dept="market_supervision", clearance=3), headers={"X-Purpose-Of-Use": "curiosity"}
    ).json()
    assert {e["extensions"]["code"] for e in body["errors"]} == {"PURPOSE_REQUIRED"}


def test_public_never_sees_l3_even_masked(live: LiveServer) -> None:
    body = live.post(IDS).json()
    assert all(n["legalRepIdNumber"] is None for n in body["data"]["creditRecords"]["nodes"])
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}


def test_l4_needs_clearance_4(live: LiveServer, token: TokenFactory) -> None:
    query = "{ creditRecords(first: 50) { nodes { internalNote } } }"
    headers = {"X-Purpose-Of-Use": "law_enforcement"}
    denied = live.post(query, token(dept="market_supervision", clearance=3), headers=headers).json()
    assert {e["extensions"]["code"] for e in denied["errors"]} == {"FORBIDDEN"}
    allowed = live.post(query, token(dept="market_supervision", clearance=4), headers=headers).json()
    assert "errors" not in allowed


def test_records_read_only_the_columns_the_query_selects(
    live: LiveServer, token: TokenFactory, statements: list[tuple[str, Any]]
) -> None:
    """Data minimisation: a column no selected field reads (the summary text, the internal note)
    never leaves the credit database; selecting it reads it."""
    bearer = token(dept="market_supervision", clearance=4)
    lean = live.post("{ creditRecords(first: 3) { nodes { id title publicityEndsOn } } }", bearer).json()
    assert "errors" not in lean and all(n["publicityEndsOn"] for n in lean["data"]["creditRecords"]["nodes"])
    full = live.post("{ creditRecords(first: 3) { nodes { id content } } }", bearer).json()
    assert "errors" not in full and all(n["content"] for n in full["data"]["creditRecords"]["nodes"])
    (lean_sql, _), (full_sql, _) = statements
    assert "credit_records.title" in lean_sql and "credit_records.publicity_end" in lean_sql
    assert "credit_records.content" not in lean_sql and "credit_records.internal_note" not in lean_sql
    assert "credit_records.content" in full_sql and "credit_records.title" not in full_sql
    # Through a link, under the per-enterprise cap, too.
    linked = live.post(
        "{ creditRecords(first: 3) { nodes { enterprise { credit { records { kind } } } } } }", bearer
    ).json()
    assert "errors" not in linked
    assert all("credit_records.content" not in sql for sql, _ in statements[2:])
