"""The generated row filler and the coercion tables of compiled completion (``schema.leaves``).

The differential suite (``test_compiled.py``) checks whole responses against graphql-core's; these
tests pin the filler's own contract: what it completes, where it stops for the general loop, and
that names reach the generated source only as literals.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from graphql import GraphQLBoolean, GraphQLID, GraphQLLeafType, GraphQLScalarType, GraphQLString
from strawberry.schema.config import StrawberryConfig

from schema.execution import _record_class
from schema.leaves import PLAIN, coercions, filler
from schema.scalars import SCALAR_MAP, Adcode


@strawberry.enum
class Kind(enum.Enum):
    RED = "red_list"
    BLACK = "black_list"


@strawberry.type
class _Probe:
    day: dt.date
    at: dt.datetime
    time: dt.time
    amount: Decimal
    kind: Kind
    code: Adcode


_TYPES = strawberry.Schema(
    query=_Probe, config=StrawberryConfig(scalar_map=SCALAR_MAP)
)._schema.type_map  # the leaf types as a CityGraph schema has them
DATE, DATETIME, TIME = _TYPES["Date"], _TYPES["DateTime"], _TYPES["Time"]
DECIMAL, KIND, ADCODE = _TYPES["Decimal"], _TYPES["Kind"], _TYPES["Adcode"]
LEAVES: list[Any] = [GraphQLString, GraphQLID, GraphQLBoolean, DATE, DATETIME, TIME, DECIMAL, KIND, ADCODE]
SAMPLES = [
    "330203", "", 7, 10**30, 1.5, True, False, dt.date(2025, 3, 1),
    dt.datetime(2025, 3, 1, 8, 30, tzinfo=dt.UTC), dt.time(8, 30), Decimal("100.50"), "red_list",
]  # fmt: skip


def _outcome(coerce: Any, value: object) -> object:
    """What ``coerce`` returns for ``value``, or the type of what it raises."""
    try:
        return coerce(value)
    except Exception as error:
        return type(error)


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda leaf: leaf.name)
def test_coercion_tables_give_what_the_types_own_coercion_gives(leaf: GraphQLLeafType) -> None:
    table = coercions(leaf)
    assert set(table) >= set(PLAIN)
    for value in SAMPLES:
        coerce = table[type(value)]
        mine = value if coerce is None else _outcome(coerce, value)
        theirs = _outcome(leaf.coerce_output_value, value)
        if mine is None:  # an enum value the table does not know: graphql-core's path decides
            assert leaf is KIND
            continue
        assert (mine, type(mine)) == (theirs, type(theirs)), (leaf.name, value)


def test_code_scalars_and_temporal_types_skip_the_generic_coercion() -> None:
    assert coercions(ADCODE)[str] is None  # serialize=str: an exact str is its own result
    assert coercions(DATE)[dt.date] is dt.date.isoformat
    assert coercions(DATETIME)[dt.datetime] is dt.datetime.isoformat


SLOTS: tuple[Any, ...] = (
    ("id", "id", GraphQLID, False),
    ("title", "title", GraphQLString, False),
    ("__typename", None, "CreditRecord", True),
    ("kind", "kind", KIND, False),
    ("decisionDate", "decision_date", DATE, False),
    ("enterprise", None, None, True),  # a link: filled later by the executor
    ("amount", "amount", DECIMAL, True),
    ("code", "code", ADCODE, True),
)


def _item(**changes: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "id": 12, "title": "处罚", "kind": "red_list", "decision_date": dt.date(2025, 3, 1),
        "amount": Decimal("100.50"), "code": "330203",
    }  # fmt: skip
    values.update(changes)
    return SimpleNamespace(**{k: v for k, v in values.items() if v is not _DROP})


_DROP = object()


def test_the_filler_completes_every_plain_value_in_response_order() -> None:
    row: dict[str, Any] = {}
    assert filler(SLOTS)(_item(), row) == len(SLOTS)
    assert list(row.items()) == [
        ("id", "12"), ("title", "处罚"), ("__typename", "CreditRecord"), ("kind", "RED"),
        ("decisionDate", "2025-03-01"), ("enterprise", None), ("amount", "100.50"), ("code", "330203"),
    ]  # fmt: skip


def test_a_null_in_a_nullable_field_is_completed() -> None:
    row: dict[str, Any] = {}
    assert filler(SLOTS)(_item(amount=None, code=None), row) == len(SLOTS)
    assert row["amount"] is None and row["code"] is None


@pytest.mark.parametrize(
    ("changes", "stop"),
    [
        ({"id": None}, 0),  # a null in a non-null field: graphql-core propagates it
        ({"title": _DROP}, 1),  # a missing attribute: the item goes to graphql-core
        ({"kind": "NO_SUCH_KIND"}, 3),  # an enum value the type does not have
        ({"kind": ValueError("denied")}, 3),  # a denied field's exception value
        ({"decision_date": "yesterday"}, 4),  # a value the Date serialiser refuses
        ({"id": 10**5000}, 0),  # str() of this int raises: graphql-core reports it
        ({"amount": SimpleNamespace()}, 6),  # a value of no plain type: no coercion to trust
    ],
)
def test_the_filler_stops_at_the_first_value_it_cannot_settle(changes: dict[str, object], stop: int) -> None:
    row: dict[str, Any] = {}
    assert filler(SLOTS)(_item(**changes), row) == stop
    assert list(row) == [slot[0] for slot in SLOTS[:stop]]  # what comes before is completed


def test_a_value_a_coercion_maps_to_none_is_left_to_the_general_loop() -> None:
    nothing = GraphQLScalarType("Nothing", serialize=lambda value: None)
    row: dict[str, Any] = {}
    assert (
        filler((("a", "a", GraphQLString, False), ("n", "n", nothing, True)))(SimpleNamespace(a="x", n="y"), row) == 1
    )


def test_names_reach_the_source_only_as_literals() -> None:
    key, name = "k');\nimport os  #\"'", "n'); raise SystemExit('"
    fill = filler(((key, name, GraphQLString, False),))
    row: dict[str, Any] = {}
    assert fill(SimpleNamespace(**{name: "v"}), row) == 1
    assert row == {key: "v"}


def test_one_function_per_plan_shape() -> None:
    assert filler(SLOTS) is filler(tuple(SLOTS))
    assert filler(SLOTS) is not filler(SLOTS[:-1])


class _Plain:
    pass


class _Awaitable:
    def __await__(self) -> Any:
        yield


class _Dynamic:
    def __getattr__(self, name: str) -> object:
        return None


class _Impostor:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return ValueError


def test_record_classes_are_only_those_no_instance_of_which_needs_a_check() -> None:
    assert _record_class(_Plain)
    assert _record_class(SimpleNamespace)
    others: list[type] = [ValueError, _Awaitable, _Dynamic, _Impostor, type(None)]
    for cls in others:
        assert not _record_class(cls), cls
