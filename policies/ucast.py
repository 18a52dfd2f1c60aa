"""Row filters: OPA's UCAST conditions translated to SQLAlchemy with bound parameters.

A filter is the shape OPA's Compile API emits (``application/vnd.opa.ucast.all+json``)::

    {"type": "compound", "operator": "and" | "or" | "not", "value": [<node>, ...]}
    {"type": "field", "field": "table.column", "operator": "eq" | "ne" | "lt" | "lte" | "gt" | "gte"
                                                       | "in" | "nin" | "startswith", "value": v}

``{}`` means unrestricted. Field names are looked up in the connector's allowlist, never
interpolated, and values are always bound parameters, coerced to the column's Python type (a
``"2026-11-27"`` compared with a DATE column becomes a ``date``; a timestamp is compared in UTC).
Anything unknown raises ``FilterError`` so the read is denied rather than run unfiltered. SQL
NULLs fail every comparison, which is the restrictive reading.

The translation behaves the same on SQLite and PostgreSQL: a string no database text can hold
(NUL, lone surrogates) and a filter binding more than :data:`MAX_VALUES` values are refused on
both, rather than failing on one backend only (PostgreSQL refuses NUL; asyncpg binds at most
32767 parameters per statement).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true
from sqlalchemy.sql.expression import ColumnClause

from connectors.base import JSON, RowFilter
from connectors.errors import FilterError, UnknownFilterField
from connectors.sql import storable

FieldMap = Mapping[str, ColumnClause[object] | ColumnElement[object]]

_COMPARE: dict[str, Callable[[ColumnElement[object], object], ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
}

#: Nesting deeper than this is refused: policies never need it and it bounds recursion.
MAX_DEPTH = 32

#: Values one filter may bind; more is refused (a policy listing thousands of keys wants a table).
MAX_VALUES = 10_000


def _coerce(column: ColumnClause[object] | ColumnElement[object], value: JSON) -> object:
    """Convert a JSON scalar to the column's Python type so the comparison is typed, not textual."""
    if value is None or isinstance(value, bool):
        raise FilterError("filter values must be strings or numbers")
    if isinstance(value, Mapping | list | tuple):
        raise FilterError("filter value must be a scalar here")
    if isinstance(value, str) and not storable(value):
        raise FilterError("filter value holds characters no database text can store")
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    try:
        if python_type is dt.date and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if python_type is dt.datetime and isinstance(value, str):
            return _utc(column, dt.datetime.fromisoformat(value))
        if python_type is Decimal and isinstance(value, int | float | str):
            return Decimal(str(value))
        if python_type is int and isinstance(value, int):
            return value
        if python_type is str and isinstance(value, str):
            return value
        if python_type is float and isinstance(value, int | float):
            return float(value)
    except (ValueError, InvalidOperation) as exc:
        raise FilterError(f"value {value!r} does not fit column type") from exc
    raise FilterError(f"value {value!r} does not fit column type {python_type.__name__}")


def _utc(column: ColumnClause[object] | ColumnElement[object], value: dt.datetime) -> dt.datetime:
    """The instant in UTC, as the column stores it: aware for ``DateTime(timezone=True)`` (a naive
    value is taken as UTC), naive UTC otherwise. SQLite's dialect writes a datetime's wall time and
    drops its zone, so without this an offset would compare as if it were UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    elif getattr(column.type, "timezone", False):
        value = value.replace(tzinfo=dt.UTC)
    return value if getattr(column.type, "timezone", False) else value.replace(tzinfo=None)


def _count_values(node: JSON, depth: int = 0) -> int:
    """How many values a filter binds (malformed parts count 0: translation refuses them)."""
    if depth > MAX_DEPTH or not isinstance(node, Mapping):
        return 0
    value = node.get("value")
    if node.get("type") == "compound" and isinstance(value, list):
        return sum(_count_values(child, depth + 1) for child in value)
    return len(value) if isinstance(value, list) else 1


def _field(node: Mapping[str, JSON], fields: FieldMap) -> ColumnElement[bool]:
    name, operator, value = node.get("field"), node.get("operator"), node.get("value")
    if not isinstance(name, str) or name not in fields:
        raise UnknownFilterField(f"field {name!r} is not filterable here")
    column = fields[name]
    if operator in _COMPARE:
        return _COMPARE[operator](column, _coerce(column, value))
    if operator in ("in", "nin"):
        if not isinstance(value, list):
            raise FilterError(f"operator {operator} needs a list value")
        if not value:  # in [] matches nothing; nin [] matches everything
            return false() if operator == "in" else true()
        values = [_coerce(column, v) for v in value]
        return column.in_(values) if operator == "in" else column.not_in(values)
    if operator == "startswith":
        if not isinstance(value, str):
            raise FilterError("startswith needs a string value")
        # LIKE ignores ASCII case on SQLite (and MySQL): compare the prefix itself instead.
        return func.substr(column, 1, len(value)) == value
    raise FilterError(f"unsupported field operator {operator!r}")


def compound_sql(
    node: JSON, field: Callable[[Mapping[str, JSON]], ColumnElement[bool]], depth: int = 0
) -> ColumnElement[bool]:
    """A filter's and/or/not structure as SQL, ``field`` translating each field node; the
    refusals (depth, shape, unknown node types and operators) are the same for every backend."""
    if depth > MAX_DEPTH:
        raise FilterError("filter nested too deeply")
    if not isinstance(node, Mapping):
        raise FilterError("filter node must be an object")
    kind = node.get("type")
    if kind == "field":
        return field(node)
    if kind != "compound":
        raise FilterError(f"unknown filter node type {kind!r}")
    operator, children = node.get("operator"), node.get("value")
    if not isinstance(children, list):
        raise FilterError("compound filter needs a list value")
    parts = [compound_sql(child, field, depth + 1) for child in children]
    if operator == "and":
        return and_(true(), *parts)
    if operator == "or":
        return or_(false(), *parts)
    if operator == "not" and len(parts) == 1:
        return not_(parts[0])
    raise FilterError(f"unsupported compound operator {operator!r}")


def to_sqlalchemy(row_filter: RowFilter | None, fields: FieldMap) -> ColumnElement[bool]:
    """Translate a row filter to a WHERE clause; ``{}`` is unrestricted, ``None`` denies."""
    if row_filter is None:
        raise FilterError("no row filter: the read is not allowed")
    if not row_filter:
        return true()
    if _count_values(row_filter) > MAX_VALUES:
        raise FilterError(f"filter binds more than {MAX_VALUES} values")
    return compound_sql(row_filter, lambda node: _field(node, fields))


def matches(row_filter: RowFilter | None, value_of: Callable[[str], object]) -> bool:
    """Evaluate a filter in Python for connectors without SQL (``value_of`` maps field -> value).

    Same semantics as the SQL translation, including SQL's three-valued logic: a missing value
    (``None``, SQL NULL) makes a comparison unknown, ``not unknown`` is unknown, and only a true
    result selects the row. ``{}`` matches, ``None`` denies, unknown fields raise ``FilterError``.
    """
    if row_filter is None:
        raise FilterError("no row filter: the read is not allowed")
    if _count_values(row_filter) > MAX_VALUES:
        raise FilterError(f"filter binds more than {MAX_VALUES} values")
    return not row_filter or _eval(row_filter, value_of, 0) is True


def _compare(operator: str, left: object, right: object) -> bool:
    try:
        if operator == "eq":
            return bool(left == right)
        if operator == "ne":
            return bool(left != right)
        if operator == "lt":
            return bool(left < right)  # type: ignore[operator]
        if operator == "lte":
            return bool(left <= right)  # type: ignore[operator]
        if operator == "gt":
            return bool(left > right)  # type: ignore[operator]
        if operator == "gte":
            return bool(left >= right)  # type: ignore[operator]
    except TypeError as exc:
        raise FilterError("filter value does not fit the field type") from exc
    raise FilterError(f"unsupported field operator {operator!r}")


def _compound(operator: object, results: list[bool | None]) -> bool | None:
    if operator == "and":
        return False if False in results else (None if None in results else True)
    if operator == "or":
        return True if True in results else (None if None in results else False)
    if operator == "not" and len(results) == 1:
        return None if results[0] is None else not results[0]
    raise FilterError(f"unsupported compound operator {operator!r}")


def _eval(node: JSON, value_of: Callable[[str], object], depth: int) -> bool | None:
    if depth > MAX_DEPTH or not isinstance(node, Mapping):
        raise FilterError("malformed filter")
    if node.get("type") == "compound":
        children = node.get("value")
        if not isinstance(children, list):
            raise FilterError("compound filter needs a list value")
        return _compound(node.get("operator"), [_eval(c, value_of, depth + 1) for c in children])
    if node.get("type") != "field" or not isinstance(node.get("field"), str):
        raise FilterError("malformed filter node")
    left, operator = value_of(str(node["field"])), node.get("operator")
    right: object = node.get("value")
    if operator in ("in", "nin"):
        if not isinstance(right, list):
            raise FilterError(f"operator {operator} needs a list value")
        values = [_py_coerce(left, v) for v in right]
        if not values:  # as in SQL translation: in [] is false, nin [] is true, even for NULL
            return operator == "nin"
        if left is None:
            return None
        return (left in values) == (operator == "in")
    if operator == "startswith" and not isinstance(right, str):
        raise FilterError("startswith needs a string value")
    right = _py_coerce(left, right)
    if left is None:
        return None
    if operator == "startswith":
        return isinstance(left, str) and left.startswith(str(right))
    return _compare(str(operator), left, right)


def _py_coerce(left: object, right: object) -> object:
    """Type a filter value like the field's value, refusing mismatches as the SQL path does."""
    if right is None or isinstance(right, bool | Mapping | list):
        raise FilterError("filter values must be strings or numbers")
    if isinstance(right, str) and not storable(right):
        raise FilterError("filter value holds characters no database text can store")
    if left is None:
        return right
    if isinstance(left, dt.date) and isinstance(right, str):
        try:
            return type(left).fromisoformat(right)
        except ValueError as exc:
            raise FilterError("filter value does not fit the field type") from exc
    if isinstance(left, str) != isinstance(right, str):
        raise FilterError("filter value does not fit the field type")
    if isinstance(left, Decimal) and isinstance(right, int | float):
        return Decimal(str(right))
    return right


def field_names(row_filter: RowFilter | None) -> Sequence[str]:
    """The fields a filter mentions (for audit and explain)."""
    found: list[str] = []

    def walk(node: JSON) -> None:
        if isinstance(node, Mapping):
            if node.get("type") == "field" and isinstance(node.get("field"), str):
                found.append(str(node["field"]))
            value = node.get("value")
            if node.get("type") == "compound" and isinstance(value, list):
                for child in value:
                    walk(child)

    walk(row_filter)
    return found


__all__ = ["MAX_DEPTH", "MAX_VALUES", "FieldMap", "compound_sql", "field_names", "matches", "to_sqlalchemy"]
