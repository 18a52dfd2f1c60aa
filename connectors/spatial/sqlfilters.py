"""Policy row filters over PostGIS: the semantics of ``connectors.spatial.filters``, as SQL.

The embedded engine evaluates a filter with numpy over categorical columns; this module turns the
same filter into a WHERE clause with the same meaning and the same refusals (same messages): text
comparisons are bytewise (the columns use the ``"C"`` collation), SQL's three-valued logic is the
one the embedded evaluator implements, ``in []`` is false and ``nin []`` true even for null.

The ``within_districts`` extension becomes the clause the caller builds from the adcodes (the
PostGIS connector: ``ST_Intersects`` with the districts layer's stored boundaries valid today):
jurisdiction comes from the trusted districts table, never from anything the client sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, false, func, true

from connectors.base import JSON, RowFilter
from connectors.errors import FilterError, UnknownFilterField
from connectors.spatial.filters import MAX_VALUES, Categorical, Mask, Target, _count_values, _text, select
from policies.ucast import compound_sql


def _no_districts(adcodes: tuple[str, ...]) -> Mask:  # pragma: no cover - a constant is never a geometry
    raise FilterError("within_districts applies to a geometry field")


#: Filter field -> its column; a string: the field's value for every row (decided here, not in SQL);
#: ``None``: the geometry (``within_districts`` only).
Fields = Mapping[str, ColumnElement[Any] | str | None]
#: Sorted adcodes -> "the row's geometry intersects one of these districts".
InDistricts = Callable[[tuple[str, ...]], ColumnElement[bool]]

_COMPARE: dict[str, Callable[[ColumnElement[Any], str], ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "startswith": lambda c, v: func.substr(c, 1, len(v)) == v,
}


def _field(node: Mapping[str, JSON], fields: Fields, in_districts: InDistricts) -> ColumnElement[bool]:
    name, operator, value = node.get("field"), node.get("operator"), node.get("value")
    if not isinstance(name, str) or name not in fields:
        raise UnknownFilterField(f"field {name!r} is not filterable here")
    column = fields[name]
    if column is None:
        if operator != "within_districts":
            raise FilterError(f"{name} supports only the within_districts operator, not {operator!r}")
        if not isinstance(value, list):
            raise FilterError("within_districts needs a list of adcodes")
        return in_districts(tuple(sorted({_text(v) for v in value})))
    if operator == "within_districts":
        raise FilterError(f"within_districts applies to a geometry field, not {name}")
    if isinstance(column, str):
        # A constant (the layer of a per-layer clause): the embedded evaluator decides, the planner sees true/false.
        decided = select(node, Target({name: Categorical.constant(column, 1)}, _no_districts), np.arange(1))
        return true() if bool(decided[0]) else false()
    if operator in ("in", "nin"):
        if not isinstance(value, list):
            raise FilterError(f"operator {operator} needs a list value")
        wanted = sorted({_text(v) for v in value})
        if not wanted:
            return true() if operator == "nin" else false()
        return column.in_(wanted) if operator == "in" else column.not_in(wanted)
    if operator in _COMPARE:
        if operator == "startswith" and not isinstance(value, str):
            raise FilterError("startswith needs a string value")
        return _COMPARE[operator](column, _text(value))
    raise FilterError(f"unsupported field operator {operator!r}")


def where(row_filter: RowFilter | None, fields: Fields, in_districts: InDistricts) -> ColumnElement[bool]:
    """The WHERE clause of ``row_filter``; ``{}`` selects all, ``None`` denies (``FilterError``)."""
    if row_filter is None:
        raise FilterError("no row filter: the read is not allowed")
    if not row_filter:
        return true()
    if _count_values(row_filter) > MAX_VALUES:
        raise FilterError(f"filter binds more than {MAX_VALUES} values")
    return compound_sql(row_filter, lambda node: _field(node, fields, in_districts))


__all__ = ["Fields", "InDistricts", "where"]
