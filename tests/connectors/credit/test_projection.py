"""connectors.credit.connector.record_columns: which columns a selection of CreditRecord fields reads."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from connectors.base import FetchRequest, SearchRequest
from connectors.credit import CreditConnector
from connectors.credit.connector import profile_columns, record_columns
from connectors.credit.tables import credit_profiles, credit_records

ALL = [c.name for c in credit_records.c]
#: As rows name them: each column by its field's Python name.
FIELDS = ["publicity_ends_on" if name == "publicity_end" else name for name in ALL]


def names(fields: set[str] | None) -> list[str]:
    return [c.name for c in record_columns(None if fields is None else frozenset(fields))]


def test_key_relation_and_cursor_columns_are_always_read() -> None:
    assert names({"title"}) == ["id", "uscc", "title", "decision_date"]
    assert names({"kind"}) == ["id", "uscc", "kind", "decision_date"]


def test_fields_named_otherwise_read_their_columns_under_the_fields_name() -> None:
    (column,) = [c for c in record_columns(frozenset({"publicity_ends_on"})) if c.name not in ALL]
    assert column.name == "publicity_ends_on" and column.element is credit_records.c.publicity_end
    assert "publicity_ends_on" not in ALL


def test_only_links_selected_reads_the_always_read_columns() -> None:
    assert names(set()) == ["id", "uscc", "decision_date"]


def test_fields_not_known_or_an_unknown_field_reads_every_column() -> None:
    assert names(None) == FIELDS
    assert names({"title", "not_a_field_we_know"}) == FIELDS


@pytest.mark.parametrize("fields", [None, frozenset({"publicity_ends_on"})], ids=["every", "projected"])
async def test_every_read_names_a_column_as_its_field(
    credit: CreditConnector, demo_dir: Path, fields: frozenset[str] | None
) -> None:
    """By keys, related (capped in Python and ranked in SQL) and searched, a record carries the
    publicity end under its field's name, never the column's."""
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        rows = conn.execute("SELECT id, publicity_end FROM credit_records")
        ends = {str(i): dt.date.fromisoformat(d) for i, d in rows}
        busiest = "SELECT uscc, count(*) FROM credit_records GROUP BY uscc ORDER BY count(*) DESC LIMIT 1"
        uscc, most = conn.execute(busiest).fetchone()
    by_keys = await credit.fetch_many(FetchRequest("CreditRecord", sorted(ends)[:5], fields, {}))
    related = []
    # Keys of no enterprise widen the bound (limit x keys) past the busiest one's records.
    padding = [f"91330200AAAAAAA{i:03d}" for i in range(most)]
    for limit, keys in (
        (None, [uscc]),  # every record, plain
        (1, [uscc, *padding]),  # within the bound: read plain, capped in Python
        (1, [uscc]),  # the bound reached: ranked by the window function
        (2**62, [uscc]),  # a bound past a plain read's: ranked from the start
    ):
        request = FetchRequest("CreditRecord", keys, fields, {}, by="uscc", limit=limit)
        related += [record for group in await credit.fetch_related(request) for record in group]
    page = await credit.search(SearchRequest("CreditRecord", fields, {}, first=5))
    records = [r for r in by_keys if r is not None] + related + list(page.records)
    assert len(records) >= 5 + most + 3 + 5
    for record in records:
        assert "publicity_end" not in record
        assert record["publicity_ends_on"] == ends[str(record["id"])]


def test_profiles_read_the_score_and_time_of_assessment_only_when_selected() -> None:
    def profile(fields: set[str] | None) -> list[str]:
        return [c.name for c in profile_columns(None if fields is None else frozenset(fields))]

    every = [c.name for c in credit_profiles.c]
    assert profile({"rating"}) == ["uscc", "rating"]
    assert profile(set()) == ["uscc"]  # only the records link: the key it follows
    assert profile({"score", "assessed_at"}) == ["uscc", "score", "assessed_at"]
    assert profile(None) == every and profile({"rating", "not_a_field_we_know"}) == every


async def test_a_projected_profile_holds_what_was_selected(credit: CreditConnector, demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        keys = [u for (u,) in conn.execute("SELECT uscc FROM credit_profiles ORDER BY uscc LIMIT 3")]
    lean = await credit.fetch_many(FetchRequest("CreditProfile", keys, frozenset({"rating"}), {}))
    full = await credit.fetch_many(FetchRequest("CreditProfile", keys, None, {}))
    assert [dict(r or {}) for r in lean] == [{"uscc": r["uscc"], "rating": r["rating"]} for r in full if r]
    times = [r["assessed_at"] for r in full if r is not None]
    assert len(times) == 3 and all(isinstance(t, dt.datetime) and t.tzinfo is dt.UTC for t in times)
