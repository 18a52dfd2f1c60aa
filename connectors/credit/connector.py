"""The public credit platform connector: SQLAlchemy 2 async, SQLite by default, any SQLAlchemy URL."""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from sqlalchemy import BigInteger, ColumnElement, Select, and_, bindparam, false, func, or_, select

from connectors.base import (
    JSON,
    Capabilities,
    ConnectorInfo,
    FetchRequest,
    Page,
    Record,
    RowFilter,
    SchemaContribution,
    SearchRequest,
)
from connectors.credit.tables import credit_profiles, credit_records, credit_subjects, metadata
from connectors.errors import ConnectorConfigError, InvalidArgument
from connectors.sql import (
    KEYS,
    Cursors,
    Database,
    DatabaseBacked,
    StatementCache,
    bind_text,
    decode_cursor,
    filter_key,
    key_values,
    keys_in,
    projected,
    utc,
)
from policies.ucast import FieldMap, to_sqlalchemy

#: Columns a policy row filter may name, per entity (anything else is refused).
FILTER_FIELDS: Mapping[str, FieldMap] = {
    "Enterprise": {
        "credit_subjects.uscc": credit_subjects.c.uscc,
        "credit_subjects.district_code": credit_subjects.c.district_code,
    },
    "CreditProfile": {
        "credit_profiles.uscc": credit_profiles.c.uscc,
        "credit_profiles.rating": credit_profiles.c.rating,
    },
    "CreditRecord": {
        "credit_records.uscc": credit_records.c.uscc,
        "credit_records.kind": credit_records.c.kind,
        "credit_records.district_code": credit_records.c.district_code,
        "credit_records.authority": credit_records.c.authority,
        "credit_records.decision_date": credit_records.c.decision_date,
        "credit_records.publicity_start": credit_records.c.publicity_start,
        "credit_records.publicity_end": credit_records.c.publicity_end,
    },
}

#: The most rows a capped related read reads before capping in Python; a larger bound (a large
#: ``max_rows`` or batch) is ranked by the window function in SQL from the start.
_PLAIN_CAP_ROWS = 100_000
_RECORD_ORDER = (credit_records.c.decision_date.desc(), credit_records.c.id.desc())
# Related records are grouped by enterprise after the read, so the enterprises' order is free:
# enterprise-major, each one's newest first, is the (uscc, decision_date, id) index read backwards,
# with no sort of the whole batch.
_RELATED_ORDER = (credit_records.c.uscc.desc(), *_RECORD_ORDER)

# Projection: a CreditRecord field reads the column of its Python name. A column named otherwise
# is labelled with the field's name, so a row is the record as read: no copy renames it. Key,
# relation and cursor columns are always read; the link to the enterprise follows ``uscc``.
_RECORD_COLUMNS: tuple[ColumnElement[Any], ...] = tuple(
    c.label("publicity_ends_on") if c.name == "publicity_end" else c for c in credit_records.c
)
_RECORD_ALWAYS = frozenset({"id", "uscc", "decision_date"})


@functools.lru_cache(maxsize=1024)
def record_columns(fields: frozenset[str] | None) -> tuple[ColumnElement[Any], ...]:
    """The ``credit_records`` columns (named as the record's fields) that records carrying
    ``fields`` need (:func:`projected`; cached: every read asks)."""
    return projected(_RECORD_COLUMNS, fields, _RECORD_ALWAYS, {})


_PROFILE_ALWAYS = frozenset({"uscc"})


@functools.lru_cache(maxsize=256)
def profile_columns(fields: frozenset[str] | None) -> tuple[ColumnElement[Any], ...]:
    """The ``credit_profiles`` columns that profiles carrying ``fields`` need: the key always (the
    records link follows it); the internal score and the time of assessment only when selected."""
    return projected(tuple(credit_profiles.c), fields, _PROFILE_ALWAYS, {})


def _profile(row: dict[str, Any]) -> Record:
    """A profile row as its record, in place (``Database.rows`` gives each caller its own dicts)."""
    assessed = row.get("assessed_at")
    if isinstance(assessed, dt.datetime) and assessed.tzinfo is None:
        row["assessed_at"] = utc(assessed)
    return row


class CreditConnector(DatabaseBacked):
    """Credit subjects, profiles and records of the public credit platform (公共信用信息平台)."""

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name="credit",
        department="credit",
        version="1.0.0",
        entities=("Enterprise", "CreditProfile", "CreditRecord"),
        description="公共信用信息平台 (public credit platform): ratings, red/black lists, double publicity",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        fetch_by_keys=True, fetch_related=True, search=True, pagination=True
    )

    def __init__(self, url: str, options: Mapping[str, JSON] | None = None) -> None:
        self.url = url
        self.options = dict(options or {})
        self.db = Database(self.info.name, url, self.options, metadata, credit_subjects)
        self._statements = StatementCache()

    @classmethod
    def from_config(cls, config: Mapping[str, JSON], data_dir: Path) -> Self:
        url = config.get("url", f"sqlite+aiosqlite:///{data_dir / 'credit.sqlite'}")
        if not isinstance(url, str) or "://" not in url:
            raise ConnectorConfigError(
                "credit: 'url' must be a SQLAlchemy URL such as sqlite+aiosqlite:///var/credit.sqlite"
            )
        return cls(url, config)

    def schema(self) -> SchemaContribution:
        from connectors.credit.types import CreditEnterpriseFields, CreditProfile, CreditQuery, CreditRecord

        return SchemaContribution(
            query=CreditQuery,
            types=(CreditProfile, CreditRecord),
            entity_fields={"Enterprise": CreditEnterpriseFields},
            keys={"Enterprise": "uscc", "CreditProfile": "uscc", "CreditRecord": "id"},
            # The credit platform knows enterprises (its credit subjects), but the license store's
            # registration data is the master when both are enabled.
            owns={"Enterprise": 1},
        )

    def _in(self, column: ColumnElement[Any], name: str = KEYS) -> ColumnElement[bool]:
        return keys_in(column, self.db.dialect, name)

    async def _rows(
        self, query: Select[tuple[object, ...]], params: Mapping[str, object] | None = None
    ) -> list[dict[str, Any]]:
        return await self.db.rows(query, params)

    def _by_keys(
        self, entity: str, row_filter: RowFilter | None, fields: frozenset[str] | None
    ) -> Select[tuple[object, ...]]:
        """``entity``'s rows whose key is in the ``keys`` parameter, under ``row_filter``; cached."""
        table, column = {
            "Enterprise": (credit_subjects, credit_subjects.c.uscc),
            "CreditProfile": (credit_profiles, credit_profiles.c.uscc),
            "CreditRecord": (credit_records, credit_records.c.id),
        }[entity]
        if entity == "CreditRecord":
            columns = record_columns(fields)
        elif entity == "CreditProfile":
            columns = profile_columns(fields)
        else:
            columns = tuple(table.c)
        return self._statements.get(
            ("many", entity, filter_key(row_filter), tuple(c.name for c in columns)),
            lambda: select(*columns).where(self._in(column), to_sqlalchemy(row_filter, FILTER_FIELDS[entity])),
        )

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        keys = list(request.keys)
        if request.entity not in FILTER_FIELDS:
            raise InvalidArgument(f"credit does not serve {request.entity}")
        query = self._by_keys(request.entity, request.row_filter, request.fields)
        if request.entity == "Enterprise":
            rows = await self._rows(query, {KEYS: key_values(keys)})
            found: dict[object, Record | None] = {r["uscc"]: r for r in rows}
        elif request.entity == "CreditProfile":
            rows = await self._rows(query, {KEYS: key_values(keys)})
            found = {r["uscc"]: _profile(r) for r in rows}
        else:
            # ASCII digits only (str.isdigit() accepts "²", which int() refuses), within BIGINT: any
            # other key names no record, and must not fail the statement on either backend.
            ids = [i for i in (int(k) for k in keys if k.isascii() and k.isdigit()) if 0 < i < 2**63]
            rows = await self._rows(query, {KEYS: ids})
            found = {str(r["id"]): r for r in rows}
        return [found.get(k) for k in keys]

    def _related(
        self, row_filter: RowFilter | None, cap: str | None, by_kind: bool, fields: frozenset[str] | None
    ) -> Select[tuple[object, ...]]:
        """Credit records of the enterprises in ``keys`` (of the ``kinds`` when ``by_kind``), each
        enterprise's newest first, with the columns ``fields`` need; cached per shape. ``cap``: None reads them all,
        ``"total"`` at most ``total`` rows in all, ``"window"`` at most ``limit`` per enterprise."""
        columns = record_columns(fields)

        def build() -> Select[tuple[object, ...]]:
            conditions: list[ColumnElement[bool]] = [
                self._in(credit_records.c.uscc),
                to_sqlalchemy(row_filter, FILTER_FIELDS["CreditRecord"]),
            ]
            if by_kind:
                conditions.append(self._in(credit_records.c.kind, "kinds"))
            if cap != "window":
                query = select(*columns).where(*conditions).order_by(*_RELATED_ORDER)
                return query if cap is None else query.limit(bindparam("total"))
            rank = func.row_number().over(partition_by=credit_records.c.uscc, order_by=_RECORD_ORDER).label("rn")
            ranked = select(*columns, rank).where(*conditions).subquery()
            query = select(*[ranked.c[c.name] for c in columns]).where(ranked.c.rn <= bindparam("limit"))
            return query.order_by(ranked.c.decision_date.desc(), ranked.c.id.desc())

        shape = ("related", filter_key(row_filter), cap, by_kind, tuple(c.name for c in columns))
        return self._statements.get(shape, build)

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        if request.entity != "CreditRecord" or request.by != "uscc":
            raise InvalidArgument(f"credit cannot relate {request.entity} by {request.by}")
        keys = list(request.keys)
        params: dict[str, object] = {KEYS: key_values(keys)}
        kinds = request.args.get("kinds")
        by_kind = isinstance(kinds, list) and bool(kinds)
        if by_kind:
            params["kinds"] = key_values([str(k) for k in kinds])  # type: ignore[union-attr]
        limit = request.limit
        if limit is None:
            rows = await self._rows(self._related(request.row_filter, None, by_kind, request.fields), params)
        else:
            # Each enterprise's records are capped, not the batch's. Most enterprises hold a few
            # records, far under the cap: read them in one plain ordered statement bounded by
            # limit x keys rows and cap each in Python (the window function costs about twice as
            # much on SQLite). Only when that bound is reached, which is when some enterprise
            # may hold more than the cap, does a window per enterprise rank them in SQL.
            total = limit * len(keys)
            rows = []
            if total <= _PLAIN_CAP_ROWS:
                query = self._related(request.row_filter, "total", by_kind, request.fields)
                rows = await self._rows(query, {**params, "total": total + 1})
            if total > _PLAIN_CAP_ROWS or len(rows) > total:
                query = self._related(request.row_filter, "window", by_kind, request.fields)
                rows = await self._rows(query, {**params, "limit": limit})
        grouped: dict[str, list[Record]] = {k: [] for k in keys}
        for row in rows:
            group = grouped[str(row["uscc"])]
            if limit is None or len(group) < limit:
                group.append(row)
        return [grouped[k] for k in keys]

    async def search(self, request: SearchRequest) -> Page:
        if request.entity != "CreditRecord":
            raise InvalidArgument(f"credit cannot search {request.entity}")
        shape, params = self._where(request.where)
        if request.after:
            day, ident = decode_cursor(request.after, 2)
            try:
                after_date, after_id = dt.date.fromisoformat(day), int(ident)
            except ValueError as exc:
                raise InvalidArgument("after: not a cursor issued by this API") from exc
            if not 0 < after_id < 2**63:  # out of the column's range: forged, not a backend failure
                raise InvalidArgument("after: not a cursor issued by this API")
            params["after_date"], params["after_id"] = after_date, after_id
        params["rows"] = request.first + 1
        query = self._search(request.row_filter, shape, bool(request.after), request.fields)
        rows = await self._rows(query, params)
        page = rows[: request.first]
        return Page(
            records=page,
            cursors=Cursors(page, lambda r: (r["decision_date"], r["id"])),
            has_next_page=len(rows) > request.first,
        )

    def _search(
        self, row_filter: RowFilter | None, shape: tuple[str, ...], after: bool, fields: frozenset[str] | None
    ) -> Select[tuple[object, ...]]:
        """Credit records under ``row_filter`` and the ``shape`` conditions of :meth:`_where`, after
        a cursor or not, newest first, ``rows`` of them; values bound at execution, cached per
        shape: a page costs no statement building, and the pages after a cursor share one statement."""
        columns = record_columns(fields)

        def build() -> Select[tuple[object, ...]]:
            c = credit_records.c
            conditions = [to_sqlalchemy(row_filter, FILTER_FIELDS["CreditRecord"])]
            for name in shape:
                if name == "kinds":
                    conditions.append(self._in(c.kind, "kinds"))
                elif name.endswith("!"):  # a value no column can hold matches nothing
                    conditions.append(false())
                else:
                    column, op = _SEARCH_WHERE[name]
                    conditions.append(op(column, bindparam(name, type_=column.type)))
            if after:
                # BIGINT: the column is 32-bit on PostgreSQL, where a larger INTEGER parameter would overflow.
                day, before_id = (
                    bindparam("after_date", type_=c.decision_date.type),
                    bindparam("after_id", type_=BigInteger),
                )
                conditions.append(or_(c.decision_date < day, and_(c.decision_date == day, c.id < before_id)))
                # Implied by the OR, but a bound the planners can seek the (…, decision_date, id)
                # indexes to, instead of reading past every earlier page's rows.
                conditions.append(c.decision_date <= day)
            return select(*columns).where(*conditions).order_by(*_RECORD_ORDER).limit(bindparam("rows"))

        key = ("search", filter_key(row_filter), shape, after, tuple(c.name for c in columns))
        return self._statements.get(key, build)

    @staticmethod
    def _where(where: Mapping[str, JSON]) -> tuple[tuple[str, ...], dict[str, object]]:
        """A search's ``where`` as the names of its conditions (:meth:`_search`; see
        :func:`~connectors.sql.bind_text`) and their values."""
        shape: list[str] = []
        params: dict[str, object] = {}
        kinds = where.get("kinds")
        if isinstance(kinds, list) and kinds:
            shape.append("kinds")
            params["kinds"] = key_values([str(k) for k in kinds])
        for key in ("district", "uscc", "authority"):
            value = where.get(key)
            if isinstance(value, str):
                bind_text(shape, params, key, value)
        for key in ("decided_from", "decided_to"):
            value = where.get(key)
            if isinstance(value, str):
                shape.append(key)
                params[key] = dt.date.fromisoformat(value)
        return tuple(shape), params


#: The search conditions bound to one value: the column and the comparison (:meth:`CreditConnector._where`).
_SEARCH_WHERE: Mapping[str, tuple[ColumnElement[Any], Any]] = {
    "district": (credit_records.c.district_code, operator.eq),
    "uscc": (credit_records.c.uscc, operator.eq),
    "authority": (credit_records.c.authority, operator.eq),
    "decided_from": (credit_records.c.decision_date, operator.ge),
    "decided_to": (credit_records.c.decision_date, operator.le),
}


__all__ = ["FILTER_FIELDS", "CreditConnector"]
