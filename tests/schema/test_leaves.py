"""Compiled completion's parts: coercion tables and generated row fillers (``schema.leaves``), item
classes checked once, and plans shared across requests (``schema.execution``).

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
from graphql import (
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLLeafType,
    GraphQLScalarType,
    GraphQLString,
    OperationDefinitionNode,
    parse,
)
from graphql.pyutils import Undefined
from strawberry.extensions import ParserCache
from strawberry.schema.config import StrawberryConfig

from schema import execution, leaves
from schema.acyclic import AcyclicExecutionContext
from schema.execution import CompiledExecutionContext, _no_conditions, _record_class
from schema.leaves import NO_ATTRIBUTES, PLAIN, Filler, Slot, _put, coercions, filler, interpreted
from schema.per_document import PerDocument
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


_TYPES: dict[str, Any] = strawberry.Schema(
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
    assert coercions(DATE)[dt.date] is leaves.date_text  # date.isoformat, remembered
    assert coercions(DATETIME)[dt.datetime] is dt.datetime.isoformat


def test_date_texts_are_the_iso_texts_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leaves, "_DATES", {})
    monkeypatch.setattr(leaves, "_MAX_DATES", 3)
    days = [dt.date(1, 1, 1), dt.date(2024, 2, 29), dt.date(9999, 12, 31), dt.date(2025, 3, 1)]
    for day in days:
        assert leaves.date_text(day) == day.isoformat()
    # the fourth day found the table full: it was emptied, then the day remembered
    assert leaves._DATES == {dt.date(2025, 3, 1): "2025-03-01"}
    assert leaves.date_text(dt.date(2025, 3, 1)) is leaves._DATES[dt.date(2025, 3, 1)]


def test_the_filler_gives_a_dates_text_whether_or_not_it_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    slots: tuple[Slot, ...] = (("on", "decision_date", DATE, False), ("at", "at", DATE, True))
    fill = _compiled(slots)
    monkeypatch.setattr(leaves, "_MAX_DATES", 1)  # every other date empties the table
    for day in (dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 1), dt.date(1999, 12, 31)):
        row: dict[str, Any] = {}
        assert _run(fill, SimpleNamespace(decision_date=day, at=None), row) == 2
        assert row == {"on": day.isoformat(), "at": None}
    # a DateTime is no date here: it keeps its own coercion
    row = {}
    assert _run(fill, SimpleNamespace(decision_date=dt.datetime(2025, 3, 1, 8, tzinfo=dt.UTC), at=None), row) == 2
    assert row["on"] == "2025-03-01T08:00:00+00:00"
    # a date's subclass is no plain value at all: the general loop (graphql-core's rules) takes it
    row = {}
    assert _run(fill, SimpleNamespace(decision_date=_Day(2025, 3, 1), at=None), row) == 0 and "on" not in row


class _Day(dt.date):
    """A date subclass with its own ISO text: never mistaken for a date it equals."""

    def isoformat(self) -> str:
        return f"day {super().isoformat()}"


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


def _compiled(slots: tuple[Slot, ...]) -> Filler:
    """The filler of ``slots`` once compiled: a shape is compiled the second time it is asked for."""
    filler(slots)
    fill = filler(slots)
    assert fill is not interpreted
    return fill


def _run(fill: Filler, item: object, row: dict[str, Any]) -> int:
    """``fill`` on ``item`` read as a record's ``__dict__`` (into ``row``) and by ``getattr``:
    the same steps completed, the same values in the same order."""
    by_getattr: dict[str, Any] = {}
    done = fill(item, by_getattr, NO_ATTRIBUTES)
    assert fill(item, row, vars(item)) == done
    assert list(row.items()) == list(by_getattr.items())
    return done


class _Defaults:
    """Values a record's ``__dict__`` may lack: a class default, a method."""

    title = "类默认"

    def amount(self) -> str:  # a method where a value was expected: no plain value
        return "1"


def test_names_missing_from_a_records_dict_are_read_as_getattr_reads_them() -> None:
    slots: tuple[Slot, ...] = (("t", "title", GraphQLString, False), ("a", "amount", GraphQLString, True))
    item = _Defaults()
    row: dict[str, Any] = {}
    assert _run(_compiled(slots), item, row) == 1 and row == {"t": "类默认"}  # the method: the general loop's
    item.__dict__.update(title="自己的", amount="2")  # the instance's own values come first, as for getattr
    row = {}
    assert _run(_compiled(slots), item, row) == 2 and row == {"t": "自己的", "a": "2"}


def test_the_filler_completes_every_plain_value_in_response_order() -> None:
    row: dict[str, Any] = {}
    assert _run(_compiled(SLOTS), _item(), row) == len(SLOTS)
    assert list(row.items()) == [
        ("id", "12"), ("title", "处罚"), ("__typename", "CreditRecord"), ("kind", "RED"),
        ("decisionDate", "2025-03-01"), ("enterprise", None), ("amount", "100.50"), ("code", "330203"),
    ]  # fmt: skip


def test_a_null_in_a_nullable_field_is_completed() -> None:
    row: dict[str, Any] = {}
    assert _run(_compiled(SLOTS), _item(amount=None, code=None), row) == len(SLOTS)
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
    assert _run(_compiled(SLOTS), _item(**changes), row) == stop
    assert list(row) == [slot[0] for slot in SLOTS[:stop]]  # what comes before is completed


@pytest.mark.parametrize("nothing", [None, Undefined])
def test_a_value_a_coercion_maps_to_nothing_is_left_to_the_general_loop(nothing: object) -> None:
    nothing = GraphQLScalarType("Nothing", serialize=lambda value: None)
    row: dict[str, Any] = {}
    fill = _compiled((("a", "a", GraphQLString, False), ("n", "n", nothing, True)))
    assert _run(fill, SimpleNamespace(a="x", n="y"), row) == 1


def test_names_reach_the_source_only_as_literals() -> None:
    key, name = "k');\nimport os  #\"'", "n'); raise SystemExit('"
    fill = _compiled(((key, name, GraphQLString, False),))
    row: dict[str, Any] = {}
    assert _run(fill, SimpleNamespace(**{name: "v"}), row) == 1
    assert row == {key: "v"}


def test_a_shape_is_compiled_the_second_time_and_aliases_share_its_code() -> None:
    fresh = GraphQLScalarType("Fresh", serialize=str)  # a shape no other test has made
    slots: tuple[Slot, ...] = (("first", "title", GraphQLString, False), ("n", "amount", fresh, True))
    assert filler(slots) is interpreted  # seen once: the general loop completes it
    fill = filler(slots)
    assert fill is not interpreted and filler(slots) is fill
    aliased = _compiled((("other", "title", GraphQLString, False), ("m", "amount", fresh, True)))
    assert aliased.__code__ is fill.__code__  # the keys are the function's own, the code is shared
    row: dict[str, Any] = {}
    assert _run(aliased, _item(), row) == 2
    assert row == {"other": "处罚", "m": "100.50"}


def test_compiles_stay_within_their_budget_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leaves, "_BUDGET", leaves._Budget(per_second=1))
    shapes = [((f"a{i}", "title", GraphQLScalarType(f"Budget{i}", serialize=str), False),) for i in range(2)]
    for slots in shapes:
        filler(slots)  # seen once
    assert filler(shapes[0]) is not interpreted
    assert filler(shapes[1]) is interpreted  # the second compile in the same second waits


class _Plain:
    pass


class _Awaitable:
    def __await__(self) -> Any:
        yield


class _Dynamic:
    def __getattr__(self, name: str) -> object:
        return None


class _Reads:
    def __getattribute__(self, name: str) -> object:
        return object.__getattribute__(self, name)


class _Slotted:
    __slots__ = ("name",)


class _OwnDict:
    __dict__: Any = property(lambda self: {})  # a __dict__ that is not the instance's own


class _Property:
    @property
    def name(self) -> str:  # getattr reads this, whatever the instance's __dict__ holds
        return "property"


class _Impostor:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return ValueError


def test_record_classes_are_only_those_no_instance_of_which_needs_a_check() -> None:
    assert _record_class(_Plain)
    assert _record_class(_Entry)  # a strawberry type, as records are
    others: list[type] = [
        ValueError, _Awaitable, _Dynamic, _Reads, _Slotted, _OwnDict, _Property, _Impostor, type(None)
    ]  # fmt: skip
    for cls in others:
        assert not _record_class(cls), cls


@strawberry.type
class _Entry:
    name: str


@strawberry.type
class _Entries:
    @strawberry.field
    def entries(self) -> list[_Entry | None]:
        odd = _Entry(name="b")
        odd.__dict__["__await__"] = None  # graphql-core's hasattr() sees it: it tries to await the item
        return [_Entry(name="a"), odd, _Entry(name="c")]


async def test_an_instance_that_claims_to_be_awaitable_is_handled_as_graphql_core_does() -> None:
    results = []
    for context in (CompiledExecutionContext, AcyclicExecutionContext):
        schema = strawberry.Schema(query=_Entries, execution_context_class=context)
        result = await schema.execute("{ entries { name } }")
        results.append((result.data, [(e.message, e.path) for e in result.errors or []]))
    assert results[0] == results[1]
    assert results[0][0] == {"entries": [{"name": "a"}, None, {"name": "c"}]}


def test_filler_caches_drop_their_oldest_entries_past_their_bound() -> None:
    cache: dict[int, int] = {}
    for i in range(5):
        assert _put(cache, i, i * 10, 3) == i * 10
    assert cache == {2: 20, 3: 30, 4: 40}


@pytest.mark.parametrize(
    ("document", "unconditional"),
    [
        ("{ entries { name } }", True),
        ("query { entries { ...F } } fragment F on _Entry { name }", True),
        ("query($s: Boolean!) { entries { name @skip(if: $s) } }", False),
        ("query($s: Boolean!) { entries { ...F } } fragment F on _Entry { name @include(if: $s) }", False),
        ("query($s: Boolean!) { entries { ...F @include(if: $s) } } fragment F on _Entry { name }", False),
        ("query($s: Boolean!) { entries { ... on _Entry @skip(if: $s) { name } } }", False),
        ("{ entries @stream { name } }", False),
    ],
)
def test_only_operations_no_variable_can_change_share_plans(document: str, unconditional: bool) -> None:
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    fragments = [d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)]
    assert _no_conditions(operation, fragments) is unconditional


async def test_a_shared_plan_serves_later_requests_with_the_same_document(monkeypatch: pytest.MonkeyPatch) -> None:
    # The parser cache hands out one document object per query text, as in the gateway.
    schema = strawberry.Schema(
        query=_Entries, execution_context_class=CompiledExecutionContext, extensions=[lambda: ParserCache(maxsize=8)]
    )
    shared: PerDocument[Any] = PerDocument(1024)  # empty: earlier tests may have filled the process's
    monkeypatch.setattr(execution, "_SHARED", shared)
    results = [await schema.execute("{ entries { name } }") for _ in range(3)]
    assert len(shared) == 1  # one plan (the entries' items), built once, reused twice
    assert results[0].data == results[1].data == results[2].data
    other = await schema.execute("{ entries { other: name } }")  # another document: its own plan
    assert len(shared) == 2
    assert other.data == {"entries": [{"other": "a"}, None, {"other": "c"}]}


def test_an_enum_value_whose_coercion_gives_nothing_is_left_to_graphql_core() -> None:
    enum_type: Any = GraphQLEnumType("Odd", {"A": "a", "B": "b"})
    enum_type.coerce_output_value = lambda value: Undefined if value == "b" else "A"
    names: Any = coercions(enum_type)[str]
    assert names("a") == "A"
    assert names("b") is None  # not in the table: the general loop decides


class _Shadowed:
    """An item whose ``__dict__`` holds a name its class's property answers instead."""

    def __init__(self) -> None:
        self.__dict__["name"] = "in the dict"

    @property
    def name(self) -> str:
        return "from the property"


@strawberry.type
class _ShadowedEntries:
    @strawberry.field
    def entries(self) -> list[_Entry]:
        return [_Shadowed(), _Shadowed()]  # type: ignore[list-item]  # read as graphql-core reads them


async def test_a_value_a_property_answers_is_the_propertys_in_either_executor() -> None:
    for context in (CompiledExecutionContext, AcyclicExecutionContext):
        schema = strawberry.Schema(query=_ShadowedEntries, execution_context_class=context)
        for _ in range(3):  # the filler is compiled on the second use of its shape
            result = await schema.execute("{ entries { name } }")
            assert result.errors is None
            assert result.data == {"entries": [{"name": "from the property"}] * 2}, context
