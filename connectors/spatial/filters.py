"""Policy row filters over a layer, vectorised: UCAST plus the ``within_districts`` extension.

Semantics are those of :func:`policies.ucast.matches` (SQL's three-valued logic: a null value
makes a comparison unknown, ``not unknown`` is unknown, only a true result selects a row; ``in []``
is false and ``nin []`` true even for null), evaluated for a whole array of candidate rows at once:
every filterable column is categorical, so an operator is evaluated once per distinct value and
spread to the rows through their codes. ``tests/connectors/spatial`` checks the result against
``matches()`` row by row.

The extension::

    {"type": "field", "field": "features.geometry", "operator": "within_districts", "value": ["330203"]}

selects the features that intersect the *stored* boundary of any listed district (the districts
layer, versions valid today), looked up with the layer's STRtree. It applies only to a geometry
field; anything the evaluator does not know — a field outside the allowlist, an operator, a value
of the wrong type — raises ``FilterError`` so the read is denied, never run unfiltered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from connectors.base import JSON, RowFilter
from connectors.errors import FilterError, UnknownFilterField
from connectors.sql import storable

Mask = NDArray[np.bool_]
Indices = NDArray[np.intp]

#: Nesting deeper than this is refused (as in ``policies.ucast``).
MAX_DEPTH = 32
#: Values one filter may bind (as in ``policies.ucast``).
MAX_VALUES = 10_000
GEOMETRY = "__geometry__"


@dataclass(frozen=True, slots=True)
class Categorical:
    """A text column as sorted distinct values and one code per row (-1 = null)."""

    categories: tuple[str, ...]
    codes: NDArray[np.int32]

    @classmethod
    def of(cls, values: Sequence[object]) -> Categorical:
        """From text values; ``None`` and NaN (how pyogrio reads a missing text) are null."""
        import pandas as pd  # type: ignore[import-untyped]

        codes, distinct = pd.factorize(np.asarray(values, dtype=object), sort=True, use_na_sentinel=True)
        return cls(tuple(str(v) for v in distinct), np.asarray(codes, dtype=np.int32))

    @classmethod
    def constant(cls, value: str, size: int) -> Categorical:
        return cls((value,), np.zeros(size, dtype=np.int32))


@dataclass(frozen=True, slots=True)
class Target:
    """What a filter is evaluated over: columns by filter field, and the district lookup."""

    columns: Mapping[str, Categorical | str]  # filter field -> column, or GEOMETRY
    #: adcodes -> the rows (of the whole layer) whose geometry intersects those districts.
    in_districts: Callable[[tuple[str, ...]], Mask]


def _count_values(node: JSON, depth: int = 0) -> int:
    if depth > MAX_DEPTH or not isinstance(node, Mapping):
        return 0
    value = node.get("value")
    if node.get("type") == "compound" and isinstance(value, list):
        return sum(_count_values(child, depth + 1) for child in value)
    return len(value) if isinstance(value, list) else 1


def _text(value: object) -> str:
    if value is None or isinstance(value, bool) or isinstance(value, Mapping | list | tuple):
        raise FilterError("filter values must be strings or numbers")
    if not isinstance(value, str):
        raise FilterError("filter value does not fit the field type (text)")
    if not storable(value):
        raise FilterError("filter value holds characters no database text can store")
    return value


def _compare(operator: str, left: str, right: str) -> bool:
    if operator == "eq":
        return left == right
    if operator == "ne":
        return left != right
    if operator == "lt":
        return left < right
    if operator == "lte":
        return left <= right
    if operator == "gt":
        return left > right
    if operator == "gte":
        return left >= right
    if operator == "startswith":
        return left.startswith(right)
    raise FilterError(f"unsupported field operator {operator!r}")


def _field(node: Mapping[str, JSON], target: Target, rows: Indices) -> tuple[Mask, Mask]:
    name, operator, value = node.get("field"), node.get("operator"), node.get("value")
    if not isinstance(name, str) or name not in target.columns:
        raise UnknownFilterField(f"field {name!r} is not filterable here")
    column = target.columns[name]
    if isinstance(column, str):  # the geometry: only the district extension applies
        if operator != "within_districts":
            raise FilterError(f"{name} supports only the within_districts operator, not {operator!r}")
        if not isinstance(value, list):
            raise FilterError("within_districts needs a list of adcodes")
        adcodes = tuple(sorted({_text(v) for v in value}))
        inside = target.in_districts(adcodes)[rows]
        return inside, ~inside
    if operator == "within_districts":
        raise FilterError(f"within_districts applies to a geometry field, not {name}")
    codes = column.codes[rows]
    if operator in ("in", "nin"):
        if not isinstance(value, list):
            raise FilterError(f"operator {operator} needs a list value")
        wanted = {_text(v) for v in value}
        if not wanted:  # in [] is false and nin [] true, for null values too
            everywhere = np.full(len(rows), operator == "nin", dtype=np.bool_)
            return everywhere, ~everywhere
        per_category = np.array([(c in wanted) == (operator == "in") for c in column.categories], dtype=np.bool_)
    elif operator in ("eq", "ne", "lt", "lte", "gt", "gte", "startswith"):
        if operator == "startswith" and not isinstance(value, str):
            raise FilterError("startswith needs a string value")
        right = _text(value)
        per_category = np.array([_compare(operator, c, right) for c in column.categories], dtype=np.bool_)
    else:
        raise FilterError(f"unsupported field operator {operator!r}")
    known = codes >= 0
    hit = np.zeros(len(rows), dtype=np.bool_)
    miss = np.zeros(len(rows), dtype=np.bool_)
    if len(per_category):
        hit[known] = per_category[codes[known]]
        miss[known] = ~per_category[codes[known]]
    return hit, miss


def _eval(node: JSON, target: Target, rows: Indices, depth: int) -> tuple[Mask, Mask]:
    """(definitely true, definitely false) per row; neither = unknown."""
    if depth > MAX_DEPTH:
        raise FilterError("filter nested too deeply")
    if not isinstance(node, Mapping):
        raise FilterError("filter node must be an object")
    kind = node.get("type")
    if kind == "field":
        return _field(node, target, rows)
    if kind != "compound":
        raise FilterError(f"unknown filter node type {kind!r}")
    operator, children = node.get("operator"), node.get("value")
    if not isinstance(children, list):
        raise FilterError("compound filter needs a list value")
    parts = [_eval(child, target, rows, depth + 1) for child in children]
    if operator == "and":
        true = np.ones(len(rows), dtype=np.bool_)
        false = np.zeros(len(rows), dtype=np.bool_)
        for t, f in parts:
            true &= t
            false |= f
        return true, false
    if operator == "or":
        true = np.zeros(len(rows), dtype=np.bool_)
        false = np.ones(len(rows), dtype=np.bool_)
        for t, f in parts:
            true |= t
            false &= f
        return true, false
    if operator == "not" and len(parts) == 1:
        t, f = parts[0]
        return f, t
    raise FilterError(f"unsupported compound operator {operator!r}")


def select(row_filter: RowFilter | None, target: Target, rows: Indices) -> Mask:
    """Which of ``rows`` the filter selects; ``{}`` selects all, ``None`` denies."""
    if row_filter is None:
        raise FilterError("no row filter: the read is not allowed")
    if not row_filter:
        return np.ones(len(rows), dtype=np.bool_)
    if _count_values(row_filter) > MAX_VALUES:
        raise FilterError(f"filter binds more than {MAX_VALUES} values")
    true, _ = _eval(row_filter, target, rows, 0)
    return true


__all__ = ["GEOMETRY", "MAX_DEPTH", "MAX_VALUES", "Categorical", "Target", "select"]
