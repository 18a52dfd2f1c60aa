"""Units of the policy layer: decision validation, masking, row-filter translation."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import Column, Date, Integer, MetaData, String, Table, create_engine, select

from connectors.errors import FilterError, UnknownFilterField
from policies.decision import parse_decision
from policies.masking import mask_text
from policies.ucast import matches, to_sqlalchemy


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        "allow",
        {"allow": "true", "filter": {}},
        {"allow": 1, "filter": {}},
        {"allow": True},
        {"allow": True, "filter": []},
        {"allow": True, "filter": {}, "fields": []},
        {"allow": True, "filter": {}, "fields": {"A.b": {"action": "mask", "keep_prefix": -1}}},
        {"allow": True, "filter": {}, "reasons": "x"},
    ],
)
def test_malformed_decisions_deny(raw: object) -> None:
    assert parse_decision(raw).allow is False


def test_valid_decision_parses() -> None:
    decision = parse_decision(
        {
            "allow": True,
            "filter": {},
            "fields": {"A.b": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}},
            "obligations": {"max_rows": 10},
            "reasons": ["ok"],
        }
    )
    assert decision.allow and decision.max_rows == 10
    rule = decision.rule("A.b")
    assert rule is not None and (rule.action, rule.keep_prefix, rule.keep_suffix) == ("mask", 3, 4)


def test_deny_carries_a_known_code_only() -> None:
    assert parse_decision({"allow": False, "code": "PURPOSE_REQUIRED"}).code == "PURPOSE_REQUIRED"
    assert parse_decision({"allow": False, "code": "<script>"}).code == "FORBIDDEN"


@pytest.mark.parametrize(
    ("value", "prefix", "suffix", "expected"),
    [
        ("13812345678", 3, 4, "138****5678"),
        ("330203198807151234", 3, 4, "330***********1234"),
        ("330203198807151234", 10, 4, "330203********1234"),  # birth date hidden whatever the pattern
        ("王小明", 1, 0, "王**"),
        ("ab", 1, 1, "**"),  # never reveal the whole value
    ],
)
def test_masking(value: str, prefix: int, suffix: int, expected: str) -> None:
    assert mask_text(value, prefix, suffix) == expected


meta = MetaData()
rows = Table("rows", meta, Column("id", Integer, primary_key=True), Column("district", String), Column("day", Date))
FIELDS = {"rows.district": rows.c.district, "rows.day": rows.c.day, "rows.id": rows.c.id}


def test_unknown_fields_and_operators_raise() -> None:
    with pytest.raises(UnknownFilterField):
        to_sqlalchemy({"type": "field", "field": "rows.secret", "operator": "eq", "value": 1}, FIELDS)
    with pytest.raises(FilterError):
        to_sqlalchemy({"type": "field", "field": "rows.id", "operator": "regex", "value": ".*"}, FIELDS)
    with pytest.raises(FilterError):
        to_sqlalchemy(None, FIELDS)


def test_values_are_bound_parameters() -> None:
    clause = to_sqlalchemy(
        {"type": "field", "field": "rows.district", "operator": "eq", "value": "x' OR '1'='1"}, FIELDS
    )
    compiled = clause.compile()
    assert "OR" not in str(compiled) and "x' OR '1'='1" in compiled.params.values()


districts = st.sampled_from(["330203", "330205", "330206", None])
days = st.one_of(st.none(), st.dates(dt.date(2020, 1, 1), dt.date(2027, 1, 1)))


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(
            lambda op, v: {"type": "field", "field": "rows.district", "operator": op, "value": v},
            st.sampled_from(["eq", "ne", "startswith"]),
            st.sampled_from(["330203", "3302", "330206"]),
        ),
        st.builds(
            lambda op, v: {"type": "field", "field": "rows.district", "operator": op, "value": v},
            st.sampled_from(["in", "nin"]),
            st.lists(st.sampled_from(["330203", "330205"]), max_size=2),
        ),
        st.builds(
            lambda op, v: {"type": "field", "field": "rows.day", "operator": op, "value": v.isoformat()},
            st.sampled_from(["lt", "lte", "gt", "gte", "eq"]),
            st.dates(dt.date(2020, 1, 1), dt.date(2027, 1, 1)),
        ),
    )


filters = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.builds(
            lambda op, v: {"type": "compound", "operator": op, "value": v},
            st.sampled_from(["and", "or"]),
            st.lists(children, max_size=3),
        ),
        st.builds(lambda v: {"type": "compound", "operator": "not", "value": [v]}, children),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(data=st.lists(st.tuples(districts, days), max_size=12), row_filter=filters)
def test_python_evaluator_and_sql_agree(
    data: list[tuple[str | None, dt.date | None]], row_filter: dict[str, Any]
) -> None:
    """The in-memory evaluator (for non-SQL connectors) and SQL pushdown select the same rows."""
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        if data:
            conn.execute(rows.insert(), [{"id": i, "district": d, "day": day} for i, (d, day) in enumerate(data)])
        in_sql = {r[0] for r in conn.execute(select(rows.c.id).where(to_sqlalchemy(row_filter, FIELDS)))}
    engine.dispose()
    in_python = {
        i
        for i, (d, day) in enumerate(data)
        if matches(row_filter, lambda name, d=d, day=day: {"rows.district": d, "rows.day": day}[name])  # type: ignore[misc]
    }
    assert in_sql == in_python


def test_sqlite_is_real() -> None:
    assert sqlite3.sqlite_version_info >= (3, 25)  # window functions for per-parent limits


def test_startswith_is_case_sensitive_in_sql_as_in_python() -> None:
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(rows.insert(), [{"id": 1, "district": "ABC123", "day": None}])
        lower = {"type": "field", "field": "rows.district", "operator": "startswith", "value": "abc"}
        upper = {"type": "field", "field": "rows.district", "operator": "startswith", "value": "ABC"}
        assert conn.execute(select(rows.c.id).where(to_sqlalchemy(lower, FIELDS))).all() == []
        assert conn.execute(select(rows.c.id).where(to_sqlalchemy(upper, FIELDS))).all() == [(1,)]
    engine.dispose()
    assert not matches(lower, lambda _: "ABC123") and matches(upper, lambda _: "ABC123")


@pytest.mark.parametrize(
    "node",
    [
        {"type": "field", "field": "rows.id", "operator": "ne", "value": "5"},
        {"type": "field", "field": "rows.id", "operator": "nin", "value": ["5"]},
        {"type": "field", "field": "rows.district", "operator": "eq", "value": 5},
    ],
)
def test_type_mismatches_deny_in_both_evaluators(node: dict[str, Any]) -> None:
    with pytest.raises(FilterError):
        to_sqlalchemy(node, FIELDS)
    with pytest.raises(FilterError):
        matches(node, lambda name: {"rows.id": 5, "rows.district": "330203"}[name])


def test_dates_in_lists_are_typed_in_python_too() -> None:
    node = {"type": "field", "field": "rows.day", "operator": "nin", "value": ["2026-01-01"]}
    assert not matches(node, lambda _: dt.date(2026, 1, 1))
    assert matches(node, lambda _: dt.date(2026, 1, 2))


def test_max_rows_must_be_a_readable_cap() -> None:
    for bad in (-1, 2.0, "2", True):
        assert parse_decision({"allow": True, "filter": {}, "obligations": {"max_rows": bad}}).allow is False
    zero = parse_decision({"allow": True, "filter": {}, "obligations": {"max_rows": 0}})
    assert zero.allow and zero.max_rows == 0
