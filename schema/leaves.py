"""How compiled completion turns an item's plain leaf values into response values.

``coercions(leaf)`` is a table, by a value's exact type, of how that leaf type coerces it: its own
``coerce_output_value``, or ``None`` where coercion returns the value unchanged. ``filler(slots)``
is a function generated for one plan's steps — a few lines of Python per step — that fills a
result row from an item and returns how many steps it completed. It completes a step only when
the outcome is certain: a value whose type the table passes through or coerces to a result, or
``None`` in a nullable field. At the first value it cannot settle (``None`` in a non-null field, a
missing attribute, an exception value, a value its coercion refuses) it returns that step's
index, and the executor's general loop (``schema.execution``) takes over from that step with
graphql-core's own rules, reading that attribute again (records are plain data). An exception
*raised* by reading an attribute propagates, as it did from the interpreted loop.

Generated, because interpreting a plan cost a loop iteration, four attribute reads and a table
lookup per value, where the filler tests the value's type against the types the leaf's rows
carry (a ``str`` of a String, a ``date`` of a Date) and calls the coercion directly; a record's
values are read from its ``__dict__`` by subscript (:data:`NO_ATTRIBUTES`). The source
holds ``repr`` literals of attribute and type names and numbered references to objects, never
raw text; response keys (client aliases) are arguments of the function that makes the filler,
so aliases share one compiled function. A shape (each step's attribute, leaf type and
nullability) is compiled the second time a plan uses it, at most 20 a second, so a selection
used once is not compiled and varying selections cannot buy unbounded compile work; the caches
are bounded.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from graphql import GraphQLBoolean, GraphQLEnumType, GraphQLID, GraphQLLeafType, GraphQLString
from graphql.pyutils import Undefined
from strawberry.schema.types.base_scalars import isoformat

Coerce = Callable[[Any], Any]
T = TypeVar("T")
#: What ``getattr`` gives for an attribute the item does not have (the item goes to graphql-core).
MISSING: Any = object()
#: Fills a row from an item and its attribute dict (``ATTRIBUTES``); returns the number of steps
#: completed (all of them, or the index of the first step the general loop must complete).
Filler = Callable[[Any, dict[str, Any], dict[str, Any]], int]

#: What a filler is given as an item's attribute dict when its class is not a record class
#: (``schema.execution``): empty, so every value is read with ``getattr``. For an instance of a
#: record class, whose ``__dict__`` (an exact ``dict``) answers every attribute it holds — no data
#: descriptor, ``__getattr__`` or ``__getattribute__`` in the class — the filler is given that
#: ``__dict__`` and reads a value there by subscript, a third of ``getattr``'s cost; a name not in
#: it (a class default, a method) is still read with ``getattr``. Other items pay a ``KeyError``
#: per leaf before their ``getattr``: no record class of the schema is one of them.
NO_ATTRIBUTES: dict[str, Any] = {}

#: A step as the generated code sees it: (response key, attribute name or None, leaf type or
#: None, nullable). A leaf step has both; ``__typename`` has no attribute and the type name as
#: its leaf (a str); any other step (a link, a batch field) has neither and gets ``None`` for
#: now, which keeps graphql-core's key order; the executor fills it later.
Slot = tuple[str, str | None, GraphQLLeafType | str | None, bool]

#: Value types that are never awaitable and never an exception: a leaf value of exactly one of
#: these is coerced by its type's ``coerce_output_value`` directly, the check graphql-core's
#: ``complete_leaf_value`` adds (None is no result) done by falling back when it returns None.
PLAIN: tuple[type, ...] = (str, int, float, bool, dt.date, dt.datetime, dt.time, Decimal, dict, list)
#: Built-in scalars whose coercion returns a value of this exact type unchanged
#: (``serialize_string``/``serialize_id`` a ``str``, ``serialize_boolean`` a ``bool``): copied.
_PASSTHROUGH: dict[int, type] = {id(GraphQLString): str, id(GraphQLID): str, id(GraphQLBoolean): bool}


def not_plain(value: Any) -> Any:  # pragma: no cover - a marker, never called
    """Marks a value of no plain type in a coercion table lookup."""
    raise AssertionError(value)


@functools.lru_cache(maxsize=256)  # once per leaf type, not per plan: shared, read only
def coercions(leaf: GraphQLLeafType) -> Mapping[type, Coerce | None]:
    """How a leaf's plain values are coerced, by their exact type (None: the value itself)."""
    coerce = leaf.coerce_output_value
    table: dict[type, Coerce | None] = dict.fromkeys(PLAIN, coerce)
    same = _PASSTHROUGH.get(id(leaf))
    if same is not None:
        table[same] = None
    if coerce is str:  # our code scalars (USCC, Adcode, ...): str() of an exact str is the str
        table[str] = None
    if coerce is isoformat:  # strawberry's Date, DateTime, Time: the C method, not methodcaller
        for temporal in (dt.date, dt.datetime, dt.time):
            table[temporal] = temporal.isoformat
        table[dt.date] = date_text
    if leaf is GraphQLID:
        table[int] = str  # serialize_id: str(int(value)), the same for an exact int
    if isinstance(leaf, GraphQLEnumType):
        # Records carry enum values as plain strings; strawberry's coercion of one checks for its
        # Python enum, then calls graphql-core's, which looks the value up: about 4% of a page of
        # 100. Each name is what the type's own coercion returns for that value; an unknown value
        # finds None and takes graphql-core's path, which reports it.
        table[str] = _enum_names(leaf).get
    return table


#: Dates' ISO texts by date (:func:`date_text`), emptied when it reaches :data:`_MAX_DATES`.
_DATES: dict[dt.date, str] = {}
_MAX_DATES = 8192


def date_text(value: dt.date) -> str:
    """``value.isoformat()`` for an exact ``date``, remembered. A list's dates repeat (a page of
    records falls on a few hundred days, and years have 366), and formatting one goes through
    C's ``printf`` machinery: about 3,000 instructions, a fifth of a compiled record's leaves,
    where a lookup costs a few dozen. Generated fillers look in :data:`_DATES` themselves."""
    text = _DATES.get(value)
    if text is None:
        if len(_DATES) >= _MAX_DATES:
            _DATES.clear()  # a bound, not an LRU: a working set of days refills it at once
        text = _DATES[value] = value.isoformat()
    return text


def _enum_names(enum: GraphQLEnumType) -> dict[str, str]:
    names: dict[str, str] = {}
    for definition in enum.values.values():
        value = definition.value
        if type(value) is str:
            try:
                name: Any = enum.coerce_output_value(value)
            except Exception:  # noqa: S112 - a value the type refuses keeps the generic path
                continue
            if name is not None and name is not Undefined:  # graphql-core would refuse those
                names[value] = name
    return names


#: The value types tried first, in this order, when they are passed through or coerced by a
#: function that always returns a value for them (``_total``): the types connectors' rows carry.
_FIRST = (str, int, Decimal, dt.date, dt.datetime, float, bool, dt.time)
_MOST_FIRST = 4


def _total(kind: type, coerce: Coerce | None) -> bool:
    """Whether ``coerce`` returns a value (never None or Undefined) for values of exactly ``kind``."""
    if coerce is str or (kind is dt.date and coerce is date_text):
        return True
    return kind in (dt.date, dt.datetime, dt.time) and coerce is getattr(kind, "isoformat", None)


def settle(table: Mapping[type, Coerce | None], value: Any) -> Any:
    """``value`` coerced by ``table``, or ``not_plain`` when graphql-core's rules must decide."""
    coerce = table.get(type(value), not_plain)
    if coerce is None:
        return value
    if coerce is not_plain:
        return not_plain
    try:
        result = coerce(value)
    except Exception:  # the general loop calls graphql-core's, which reports it at its path
        return not_plain
    return not_plain if result is None or result is Undefined else result


def _leaf_lines(index: int, name: str, leaf: GraphQLLeafType, nullable: bool, scope: dict[str, Any]) -> list[str]:
    """The source completing one leaf step into ``row[k<index>]``, or returning ``index``."""
    table = coercions(leaf)
    scope[f"T{index}"] = table
    key = f"k{index}"
    # The record's __dict__ first (NO_ATTRIBUTES for other items): a subscript, where getattr
    # looks through the class first; a miss is whatever getattr finds (a class default, MISSING).
    lines = ["try:", f"    v = d[{name!r}]", "except KeyError:", f"    v = getattr(item, {name!r}, MISSING)"]
    lines.append("t = type(v)")
    first = [kind for kind in _FIRST if kind in table and (table[kind] is None or _total(kind, table[kind]))]
    branch = "if"
    for n, kind in enumerate(first[:_MOST_FIRST]):
        scope[f"K{index}_{n}"] = kind
        lines.append(f"{branch} t is K{index}_{n}:")
        if table[kind] is None:
            lines.append(f"    row[{key}] = v")
        elif table[kind] is date_text:  # date_text inlined: a lookup, no call, when remembered
            lines += [
                "    r = DATES.get(v)",
                f"    row[{key}] = date_text(v) if r is None else r",
            ]
        else:
            scope[f"F{index}_{n}"] = table[kind]
            # str() of a huge int raises; the general loop then lets graphql-core report it.
            lines += [
                "    try:",
                f"        row[{key}] = F{index}_{n}(v)",
                "    except Exception:",
                f"        return {index}",
            ]
        branch = "elif"
    if isinstance(leaf, GraphQLEnumType) and str in table:  # a name, or None for an unknown value
        scope[f"E{index}"] = table[str]
        lines += [f"{branch} t is str:", f"    r = E{index}(v)", "    if r is None:", f"        return {index}"]
        lines.append(f"    row[{key}] = r")
        branch = "elif"
    if nullable:  # a null in a nullable field is the field's value (graphql-core: no coercion)
        lines += [f"{branch} v is None:", f"    row[{key}] = None"]
        branch = "elif"
    lines.append("else:" if branch == "elif" else "if True:")
    lines += [
        f"    r = settle(T{index}, v)",
        "    if r is NOT_PLAIN:",
        f"        return {index}",
        f"    row[{key}] = r",
    ]
    return lines


#: A plan's shape without its response keys: aliases share one compiled function.
_Shape = tuple[tuple[str | None, GraphQLLeafType | str | None, bool], ...]


def _factory(shape: _Shape) -> Callable[..., Filler]:
    """Compile the filler of ``shape``; called with the response keys, it returns the filler."""
    scope: dict[str, Any] = {
        "MISSING": MISSING, "NOT_PLAIN": not_plain, "settle": settle, "DATES": _DATES, "date_text": date_text
    }  # fmt: skip
    body: list[str] = []
    for index, (name, leaf, nullable) in enumerate(shape):
        if name is not None and isinstance(leaf, GraphQLLeafType):
            body += _leaf_lines(index, name, leaf, nullable, scope)
        elif isinstance(leaf, str):  # __typename
            body.append(f"row[k{index}] = {leaf!r}")
        else:
            body.append(f"row[k{index}] = None")
    body.append(f"return {len(shape)}")
    keys = ", ".join(f"k{index}" for index in range(len(shape)))
    source = f"def make({keys}):\n    def fill(item, row, d):\n" + "".join(f"        {line}\n" for line in body)
    source += "    return fill\n"
    exec(compile(source, "<compiled completion>", "exec"), scope)  # noqa: S102 (names are repr()'d)
    make: Callable[..., Filler] = scope["make"]
    return make


def interpreted(item: Any, row: dict[str, Any], attributes: dict[str, Any]) -> int:
    """The filler of a shape seen once: completes nothing, the general loop does it all."""
    return 0


class _Budget:
    """At most ``per_second`` compiles in any one-second window: clients choose selections, and
    this bounds what varying them can cost (about a millisecond per six leaves each)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._window = 0.0
        self._spent = 0

    def spend(self) -> bool:
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window, self._spent = now, 0
        if self._spent >= self.per_second:
            return False
        self._spent += 1
        return True


_BUDGET = _Budget(per_second=20)

#: Fillers by plan (keys included), compiled shapes, and shapes seen once; bounded, oldest first out.
_FILLERS: dict[tuple[Slot, ...], Filler] = {}
_MADE: dict[_Shape, Callable[..., Filler]] = {}
_SEEN_ONCE: dict[_Shape, None] = {}
_MAX_FILLERS, _MAX_MADE, _MAX_SEEN = 2048, 512, 4096


def filler(slots: tuple[Slot, ...]) -> Filler:
    """The row filler for a plan's steps (see the module docstring).

    A shape is compiled the second time it is asked for, within a budget of compiles per second:
    compiling costs about a millisecond per six leaves, as much as interpreting hundreds of
    items, and shapes are whatever clients select. Until then the shape is interpreted
    (:func:`interpreted`), with the same results.
    """
    found = _FILLERS.get(slots)
    if found is not None:
        return found
    shape = tuple((name, leaf, nullable) for _, name, leaf, nullable in slots)
    make = _MADE.get(shape)
    if make is None:
        if shape not in _SEEN_ONCE:
            _put(_SEEN_ONCE, shape, None, _MAX_SEEN)
            return interpreted
        if not _BUDGET.spend():
            return interpreted  # over the compile budget: asked again later
        _SEEN_ONCE.pop(shape, None)
        make = _put(_MADE, shape, _factory(shape), _MAX_MADE)
    return _put(_FILLERS, slots, make(*(key for key, _, _, _ in slots)), _MAX_FILLERS)


def _put(cache: dict[Any, T], key: Any, value: T, most: int) -> T:
    """Store ``value``, dropping the oldest entries past ``most`` (a lost race only keeps one more)."""
    cache[key] = value
    while len(cache) > most:
        try:
            del cache[next(iter(cache))]
        except (KeyError, RuntimeError, StopIteration):  # another thread trimmed it meanwhile
            break
    return value


__all__ = [
    "MISSING",
    "NO_ATTRIBUTES",
    "PLAIN",
    "Coerce",
    "Filler",
    "Slot",
    "coercions",
    "date_text",
    "filler",
    "interpreted",
    "not_plain",
    "settle",
]
