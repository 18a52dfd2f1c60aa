"""The vectorised row-filter evaluator agrees with ``policies.ucast.matches`` and refuses the unknown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from connectors.base import JSON
from connectors.errors import FilterError, UnknownFilterField
from connectors.spatial.filters import GEOMETRY, Categorical, Target, select
from policies.ucast import matches

VALUES = ["330203", "330205", "330212", "a", "ab", "b", ""]
text = st.sampled_from(VALUES)
column_values = st.one_of(st.none(), text)
rows_strategy = st.lists(st.tuples(column_values, column_values), min_size=0, max_size=12)


def field_node() -> st.SearchStrategy[dict[str, JSON]]:
    field = st.sampled_from(["t.kind", "t.district_code"])
    scalar = st.builds(
        lambda f, op, v: {"type": "field", "field": f, "operator": op, "value": v},
        field,
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "startswith"]),
        text,
    )
    listed = st.builds(
        lambda f, op, v: {"type": "field", "field": f, "operator": op, "value": v},
        field,
        st.sampled_from(["in", "nin"]),
        st.lists(text, max_size=3),
    )
    return st.one_of(scalar, listed)


filters = st.recursive(
    field_node(),
    lambda children: st.builds(
        lambda op, kids: {"type": "compound", "operator": op, "value": kids[:1] if op == "not" else kids},
        st.sampled_from(["and", "or", "not"]),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=8,
)


def target(rows: Sequence[tuple[str | None, str | None]], members: Any = None) -> Target:
    def in_districts(adcodes: tuple[str, ...]) -> Any:
        return members(adcodes) if members else np.zeros(len(rows), dtype=bool)

    return Target(
        columns={
            "t.kind": Categorical.of([r[0] for r in rows]),
            "t.district_code": Categorical.of([r[1] for r in rows]),
            "t.geometry": GEOMETRY,
        },
        in_districts=in_districts,
    )


@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, row_filter=filters)
def test_agrees_with_matches_row_by_row(rows: list[tuple[str | None, str | None]], row_filter: dict[str, JSON]) -> None:
    got = select(row_filter, target(rows), np.arange(len(rows), dtype=np.intp)).tolist()

    def expected(row: tuple[str | None, str | None]) -> bool:
        values: Mapping[str, object] = {"t.kind": row[0], "t.district_code": row[1]}
        return matches(row_filter, values.__getitem__)

    assert got == [expected(r) for r in rows]


def test_within_districts_uses_the_district_lookup_and_can_be_negated() -> None:
    rows = [("a", None), ("b", None), ("c", None)]
    asked: list[tuple[str, ...]] = []

    def members(adcodes: tuple[str, ...]) -> Any:
        asked.append(adcodes)
        return np.array([True, False, True])

    node: dict[str, JSON] = {
        "type": "field",
        "field": "t.geometry",
        "operator": "within_districts",
        "value": ["330212", "330203"],
    }
    everything = np.arange(3, dtype=np.intp)
    assert select(node, target(rows, members), everything).tolist() == [True, False, True]
    assert asked == [("330203", "330212")]
    negated: dict[str, JSON] = {"type": "compound", "operator": "not", "value": [node]}
    assert select(negated, target(rows, members), everything).tolist() == [False, True, False]
    assert select({}, target(rows), everything).tolist() == [True, True, True]


@pytest.mark.parametrize(
    ("row_filter", "error"),
    [
        ({"type": "field", "field": "secret.password", "operator": "eq", "value": "x"}, UnknownFilterField),
        ({"type": "field", "field": "t.kind", "operator": "within_districts", "value": ["330203"]}, FilterError),
        ({"type": "field", "field": "t.geometry", "operator": "eq", "value": "POINT (0 0)"}, FilterError),
        ({"type": "field", "field": "t.geometry", "operator": "within_districts", "value": "330203"}, FilterError),
        ({"type": "field", "field": "t.geometry", "operator": "within_districts", "value": [330203]}, FilterError),
        ({"type": "field", "field": "t.kind", "operator": "regex", "value": "a.*"}, FilterError),
        ({"type": "field", "field": "t.kind", "operator": "eq", "value": 5}, FilterError),
        ({"type": "field", "field": "t.kind", "operator": "eq", "value": None}, FilterError),
        ({"type": "field", "field": "t.kind", "operator": "eq", "value": "a\x00"}, FilterError),
        ({"type": "field", "field": "t.kind", "operator": "in", "value": "a"}, FilterError),
        ({"type": "compound", "operator": "xor", "value": []}, FilterError),
        ({"type": "sql", "value": "1=1"}, FilterError),
        (None, FilterError),
    ],
)
def test_anything_unknown_is_refused(row_filter: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        select(row_filter, target([("a", "b")]), np.arange(1, dtype=np.intp))


def test_too_many_values_are_refused() -> None:
    node = {"type": "field", "field": "t.kind", "operator": "in", "value": ["a"] * 10_001}
    with pytest.raises(FilterError, match="more than"):
        select(node, target([("a", "b")]), np.arange(1, dtype=np.intp))
