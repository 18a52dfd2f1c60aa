"""The e-license store connector (电子证照库): SQLAlchemy 2 async, SQLite by default, any URL."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, select

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
from connectors.errors import ConnectorConfigError, ConnectorUnavailable, InvalidArgument
from connectors.license.tables import enterprises, issuers, licenses, metadata, persons
from connectors.license.verification import Verifier
from connectors.sql import (
    KEYS,
    Cursors,
    Database,
    DatabaseBacked,
    StatementCache,
    bind_text,
    decode_cursor,
    filter_key,
    key_in,
    key_values,
    keys_in,
    projected,
    storable,
)
from policies.ucast import FieldMap, to_sqlalchemy

_LICENSE_FIELDS: FieldMap = {
    "licenses.number": licenses.c.number,
    "licenses.type": licenses.c.type,
    "licenses.holder_kind": licenses.c.holder_kind,
    "licenses.district_code": licenses.c.district_code,
    "licenses.status": licenses.c.status,
    "licenses.issuer_code": licenses.c.issuer_code,
}

#: Columns a policy row filter may name, per entity (anything else is refused).
FILTER_FIELDS: Mapping[str, FieldMap] = {
    "Enterprise": {
        "enterprises.uscc": enterprises.c.uscc,
        "enterprises.district_code": enterprises.c.district_code,
        "enterprises.status": enterprises.c.status,
        "enterprises.industry_code": enterprises.c.industry_code,
    },
    "Person": {"persons.district_code": persons.c.district_code},
    "License": _LICENSE_FIELDS,
    "LicenseVerification": _LICENSE_FIELDS,
    "LicenseDocument": _LICENSE_FIELDS,
}

_LICENSE_COLUMNS = (
    licenses.c.number,
    licenses.c.type,
    issuers.c.name.label("issuer"),
    licenses.c.issued_on,
    licenses.c.valid_from,
    licenses.c.valid_until,
    licenses.c.status,
    licenses.c.scope,
    licenses.c.district_code,
    licenses.c.holder_uscc,
    licenses.c.holder_id_number,
)


# Projection (connectors.sql.projected): what a field reads where it is not the column of its
# own name. Link fields never reach ``fields`` (the target type's decision governs them); what
# they follow is among the always-read key and relation columns.
_ENTERPRISE_READS: Mapping[str, tuple[str, ...]] = {"industry": ("industry_name",)}
_ENTERPRISE_ALWAYS = frozenset({"uscc", "legal_rep_id_number"})
_PERSON_READS: Mapping[str, tuple[str, ...]] = {}
_PERSON_ALWAYS = frozenset({"id_number"})
_LICENSE_READS: Mapping[str, tuple[str, ...]] = {}
_LICENSE_ALWAYS = frozenset({"number", "holder_uscc", "holder_id_number"})


@functools.lru_cache(maxsize=1024)
def _columns(entity: str, fields: frozenset[str] | None) -> tuple[ColumnElement[Any], ...]:
    """The columns ``entity``'s records carrying ``fields`` need (cached: every read asks)."""
    if entity == "Enterprise":
        return projected(tuple(enterprises.c), fields, _ENTERPRISE_ALWAYS, _ENTERPRISE_READS)
    if entity == "Person":
        return projected(tuple(persons.c), fields, _PERSON_ALWAYS, _PERSON_READS)
    return projected(_LICENSE_COLUMNS, fields, _LICENSE_ALWAYS, _LICENSE_READS)


#: Columns licences are related by (``FetchRequest.by``), and the arguments that filter them.
_RELATED_BY: Mapping[str, ColumnElement[Any]] = {
    "holder_uscc": licenses.c.holder_uscc,
    "holder_id_number": licenses.c.holder_id_number,
}
_RELATED_ARGS: Mapping[str, ColumnElement[Any]] = {"type": licenses.c.type, "status": licenses.c.status}


# Rows are renamed into records in place: ``Database.rows`` gives each caller its own dicts.
def _enterprise(row: dict[str, Any]) -> Record:
    if "industry_name" in row:
        row["industry"] = row.pop("industry_name")
    row["legal_rep_ref"] = row.pop("legal_rep_id_number")
    return row


def _person(row: dict[str, Any]) -> Record:
    row["ref"] = row["id_number"]
    return row


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class LicenseConnector(DatabaseBacked):
    """Enterprises' registration data, persons, electronic licences and their verification."""

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name="license",
        department="license",
        version="1.0.0",
        entities=("Enterprise", "Person", "License", "LicenseVerification", "LicenseDocument"),
        description="电子证照库 (e-license store): registration master data, licences, SM2 verification",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        fetch_by_keys=True, fetch_related=True, search=True, pagination=True
    )

    def __init__(self, url: str, options: Mapping[str, JSON] | None = None) -> None:
        self.url = url
        self.options = dict(options or {})
        self.db = Database(self.info.name, url, self.options, metadata, enterprises)
        self._verifier: Verifier | None = None
        self._statements = StatementCache()

    @classmethod
    def from_config(cls, config: Mapping[str, JSON], data_dir: Path) -> Self:
        url = config.get("url", f"sqlite+aiosqlite:///{data_dir / 'license.sqlite'}")
        if not isinstance(url, str) or "://" not in url:
            raise ConnectorConfigError(
                "license: 'url' must be a SQLAlchemy URL such as sqlite+aiosqlite:///var/license.sqlite"
            )
        return cls(url, config)

    def schema(self) -> SchemaContribution:
        from connectors.license.types import (
            License,
            LicenseEnterpriseFields,
            LicensePersonFields,
            LicenseQuery,
            LicenseVerification,
        )

        return SchemaContribution(
            query=LicenseQuery,
            types=(License, LicenseVerification),
            entity_fields={"Enterprise": LicenseEnterpriseFields, "Person": LicensePersonFields},
            keys={
                "Enterprise": "uscc",
                "Person": "ref",
                "License": "number",
                "LicenseVerification": "number",
                "LicenseDocument": "number",
            },
            # Registration data is the master record of an enterprise; persons live only here.
            owns={"Enterprise": 10, "Person": 10},
            record_types={"LicenseDocument": "LicenseVerification"},
        )

    async def open(self) -> None:
        if self.db.open():
            self._verifier = Verifier(self._rows, self._in)

    async def _rows(self, query: Select[Any], params: Mapping[str, object] | None = None) -> list[dict[str, Any]]:
        return await self.db.rows(query, params)

    def _in(self, column: ColumnElement[Any], keys: Sequence[object]) -> ColumnElement[bool]:
        return key_in(column, keys, self.db.dialect)

    def _licenses(self, columns: Sequence[ColumnElement[Any]], *conditions: ColumnElement[bool]) -> Select[Any]:
        # Joined whether or not the issuer is read: a licence without a known issuer is never served.
        return select(*columns).join(issuers, issuers.c.code == licenses.c.issuer_code).where(*conditions)

    def _by_keys(self, entity: str, row_filter: RowFilter | None, fields: frozenset[str] | None) -> Select[Any]:
        """``entity``'s rows whose key is in the ``keys`` parameter, under ``row_filter``, with the
        columns ``fields`` need; cached."""
        columns = _columns(entity, fields)

        def build() -> Select[Any]:
            where = to_sqlalchemy(row_filter, FILTER_FIELDS.get(entity, {}))
            if entity == "Enterprise":
                return select(*columns).where(keys_in(enterprises.c.uscc, self.db.dialect), where)
            if entity == "Person":
                return select(*columns).where(keys_in(persons.c.id_number, self.db.dialect), where)
            return self._licenses(columns, keys_in(licenses.c.number, self.db.dialect), where)

        shape = ("many", entity, filter_key(row_filter), tuple(c.key for c in columns))
        return self._statements.get(shape, build)

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        keys = list(request.keys)
        found: dict[str, Record] = {}
        if request.entity in ("Enterprise", "Person", "License"):
            query = self._by_keys(request.entity, request.row_filter, request.fields)
            rows = await self._rows(query, {KEYS: key_values(keys)})
            if request.entity == "Enterprise":
                found = {r["uscc"]: _enterprise(r) for r in rows}
            elif request.entity == "Person":
                found = {r["id_number"]: _person(r) for r in rows}
            else:
                found = {r["number"]: r for r in rows}
            return [found.get(k) for k in keys]
        where = to_sqlalchemy(request.row_filter, FILTER_FIELDS.get(request.entity, {}))
        if request.entity == "LicenseVerification":
            return await self._verify().by_numbers(keys, where, dt.datetime.now(dt.UTC))
        if request.entity == "LicenseDocument":
            return await self._verify().documents(keys, where, dt.datetime.now(dt.UTC))
        raise InvalidArgument(f"license does not serve {request.entity}")

    def _verify(self) -> Verifier:
        if self._verifier is None:
            raise ConnectorUnavailable("license connector is not open")
        return self._verifier

    def _related(
        self, by: str, row_filter: RowFilter | None, args: tuple[tuple[str, bool], ...], fields: frozenset[str] | None
    ) -> Select[Any]:
        """Licences whose ``by`` column is in the ``keys`` parameter, under ``row_filter``, with an
        equality on each argument in ``args`` (bound by name; ``False``: a value no column can
        hold, which matches nothing), with the columns ``fields`` need; ordered by holder, newest
        first; cached per shape."""
        columns = _columns("License", fields)

        def build() -> Select[Any]:
            column = _RELATED_BY[by]
            conditions = [keys_in(column, self.db.dialect), to_sqlalchemy(row_filter, FILTER_FIELDS["License"])]
            for arg, holdable in args:
                conditions.append(_RELATED_ARGS[arg] == bindparam(arg) if holdable else false())
            # Ties on the issue date go by number, bytewise as on SQLite whatever the database's locale.
            number = licenses.c.number.collate("C") if self.db.dialect == "postgresql" else licenses.c.number
            return self._licenses(columns, *conditions).order_by(column, licenses.c.issued_on.desc(), number)

        shape = ("related", by, filter_key(row_filter), args, tuple(c.key for c in columns))
        return self._statements.get(shape, build)

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        by = request.by
        if request.entity != "License" or by is None or by not in _RELATED_BY:
            raise InvalidArgument(f"license cannot relate {request.entity} by {by}")
        keys = list(request.keys)
        params: dict[str, object] = {KEYS: key_values(keys)}
        args: list[tuple[str, bool]] = []
        for arg in _RELATED_ARGS:
            value = request.args.get(arg)
            if isinstance(value, str):
                # A value no column can hold matches nothing (PostgreSQL would refuse the parameter).
                args.append((arg, storable(value)))
                params[arg] = value
        rows = await self._rows(self._related(by, request.row_filter, tuple(args), request.fields), params)
        grouped: dict[str, list[Record]] = {k: [] for k in keys}
        for row in rows:
            group = grouped[str(row[by])]
            if request.limit is None or len(group) < request.limit:
                group.append(row)
        return [grouped[k] for k in keys]

    async def search(self, request: SearchRequest) -> Page:
        if request.entity != "Enterprise":
            raise InvalidArgument(f"license cannot search {request.entity}")
        shape, params = self._where(request.where)
        if request.after:
            (params["after"],) = decode_cursor(request.after, 1)
        params["rows"] = request.first + 1
        query = self._search(request.row_filter, shape, bool(request.after), request.fields)
        rows = await self._rows(query, params)
        page = rows[: request.first]
        return Page(
            records=[_enterprise(r) for r in page],
            cursors=Cursors(page, lambda r: (r["uscc"],)),
            has_next_page=len(rows) > request.first,
        )

    def _search(
        self, row_filter: RowFilter | None, shape: tuple[str, ...], after: bool, fields: frozenset[str] | None
    ) -> Select[tuple[object, ...]]:
        """Enterprises under ``row_filter`` and the ``shape`` conditions of :meth:`_where`, after a
        cursor or not, by USCC, ``rows`` of them; values bound at execution, cached per shape: a
        page costs no statement building, and the pages after a cursor share one statement."""
        columns = _columns("Enterprise", fields)

        def build() -> Select[tuple[object, ...]]:
            c = enterprises.c
            conditions = [to_sqlalchemy(row_filter, FILTER_FIELDS["Enterprise"])]
            for name in shape:
                if name.endswith("!"):  # a value no column can hold matches nothing
                    conditions.append(false())
                elif name in ("district", "status"):
                    column = c.district_code if name == "district" else c.status
                    conditions.append(column == bindparam(name, type_=column.type))
                elif name == "industry_code":
                    conditions.append(c.industry_code.like(bindparam(name, type_=c.industry_code.type), escape="\\"))
                else:  # name: case-insensitive on both backends (ILIKE; lower() LIKE lower() on SQLite)
                    conditions.append(c.name.ilike(bindparam(name, type_=c.name.type), escape="\\"))
            if after:
                conditions.append(c.uscc > bindparam("after", type_=c.uscc.type))
            return select(*columns).where(and_(*conditions)).order_by(c.uscc).limit(bindparam("rows"))

        key = ("search", filter_key(row_filter), shape, after, tuple(c.name for c in columns))
        return self._statements.get(key, build)

    @staticmethod
    def _where(where: Mapping[str, JSON]) -> tuple[tuple[str, ...], dict[str, object]]:
        """A search's ``where`` as the names of its conditions (:meth:`_search`; see
        :func:`~connectors.sql.bind_text`) and their values."""
        shape: list[str] = []
        params: dict[str, object] = {}
        for key in ("district", "status"):
            value = where.get(key)
            if isinstance(value, str):
                bind_text(shape, params, key, value)
        industry = where.get("industry_code")
        if isinstance(industry, str):
            # Codes are stored upper-case ("C3481"); SQLite's LIKE ignores ASCII case and
            # PostgreSQL's does not, so the prefix is upper-cased and matched the same on both.
            bind_text(shape, params, "industry_code", _escape_like(industry.upper()) + "%")
        name = where.get("name")
        if isinstance(name, str):
            if len(name.strip()) < 2:
                raise InvalidArgument("filter.name: give at least 2 characters of the enterprise name")
            bind_text(shape, params, "name", "%" + _escape_like(name.strip()) + "%")
        return tuple(shape), params


__all__ = ["FILTER_FIELDS", "LicenseConnector"]
