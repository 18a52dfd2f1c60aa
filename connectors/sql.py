"""Shared plumbing for connectors backed by SQLAlchemy: engines, statement counting, cursors, keys.

SQLite (``sqlite+aiosqlite``) and PostgreSQL (``postgresql+asyncpg``) are the backends the tests
prove to behave alike; a URL naming either without an async driver (``sqlite:///f``,
``postgresql://h/db``) is given its async driver by :func:`async_url`. Where they differ:

* PostgreSQL text cannot hold NUL and neither driver sends lone surrogates: a value that no
  column can hold (:func:`storable`) matches no row instead of failing the statement;
* asyncpg binds at most 32767 parameters per statement and prepares each distinct SQL text:
  key batches are one array parameter there (:func:`key_in`), so any batch size is one
  prepared statement.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import Counter
from sqlalchemy import ARRAY, BigInteger, ColumnElement, Integer, any_, bindparam, event, false
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.base import JSON
from connectors.errors import ConnectorConfigError, InvalidArgument

#: Statements sent to each connector's backend; the benchmark and tests read it.
STATEMENTS = Counter("citygraph_backend_statements", "SQL statements sent to backends", ["connector"])


#: Pool settings a connector's config may carry, and the JSON types each accepts.
POOL_OPTIONS: Mapping[str, tuple[type, ...]] = {
    "pool_size": (int,),
    "max_overflow": (int,),
    "pool_timeout": (int, float),
    "pool_recycle": (int, float),
}

# URL schemes naming no driver or a synchronous-only one, and the async driver used instead.
_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",  # libpq's spelling, which SQLAlchemy does not accept
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+pg8000": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}


def async_url(url: str) -> str:
    """``url`` with an async driver: ``postgresql://``, ``postgres://`` and the sync PostgreSQL
    drivers become ``postgresql+asyncpg://``, ``sqlite://`` becomes ``sqlite+aiosqlite://``; a URL
    already naming an async driver (or another backend) is returned unchanged. Raises
    ``sqlalchemy.exc.ArgumentError`` for a malformed URL."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        return url
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def make_engine(connector: str, url: str, options: Mapping[str, JSON]) -> AsyncEngine:
    """An async engine with pool settings from config and a statement counter attached.

    ``options`` may carry :data:`POOL_OPTIONS` (ignored for SQLite, whose pool is per file);
    a wrong type or a URL SQLAlchemy cannot use raises ``ConnectorConfigError``.
    """
    try:
        url = async_url(url)
    except ArgumentError as exc:
        raise ConnectorConfigError(f"{connector}: cannot use database URL: {exc}") from exc
    kwargs: dict[str, Any] = {}
    if make_url(url).get_backend_name() != "sqlite":
        for key, types in POOL_OPTIONS.items():
            value = options.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, types):
                raise ConnectorConfigError(f"{connector}: {key} must be a number, got {value!r}")
            kwargs[key] = value
        # A pooled connection may have been closed by a server restart or an idle timeout.
        kwargs["pool_pre_ping"] = True
    if make_url(url).get_backend_name() == "postgresql":
        # Names the connector in pg_stat_activity, so a DBA can tell the gateway's pools apart.
        kwargs["connect_args"] = {"server_settings": {"application_name": f"citygraph-{connector}"}}
        # Connectors only read, one statement per checkout: without a BEGIN/ROLLBACK pair around
        # each, a read is one round trip instead of three, with the same statement-level snapshot.
        kwargs["isolation_level"] = "AUTOCOMMIT"
    if make_url(url).get_backend_name() in ("postgresql", "sqlite"):
        kwargs["isolation_level"] = "AUTOCOMMIT"
        # Nothing to roll back after a read in autocommit: skipping the reset on check-in saves a
        # driver round trip (for aiosqlite, a thread hop) per statement.
        kwargs["pool_reset_on_return"] = None
    try:
        engine = create_async_engine(url, **kwargs)
    except Exception as exc:
        raise ConnectorConfigError(f"{connector}: cannot use database URL: {exc}") from exc
    counter = STATEMENTS.labels(connector=connector)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_: object) -> None:
        counter.inc()

    return engine


def storable(value: str) -> bool:
    """Whether a text column of either backend could hold ``value``: PostgreSQL text cannot
    contain NUL, and a lone surrogate is not UTF-8. A value that is not storable equals no row."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def key_in(column: ColumnElement[Any], keys: Sequence[object], dialect: str) -> ColumnElement[bool]:
    """``column IN keys`` for a batch of keys, on the backend named by ``dialect``.

    Keys no row can hold (:func:`storable`) are left out, so they find nothing on both backends.
    PostgreSQL gets ``column = ANY(:array)``: one parameter whatever the batch size (asyncpg binds
    at most 32767) and one SQL text, so asyncpg's prepared-statement cache serves every batch; the
    planner treats it exactly like an ``IN`` list. Integer keys bind as BIGINT there, so a key past
    the column's range finds nothing instead of overflowing the parameter.
    """
    values = [k for k in keys if not isinstance(k, str) or storable(k)]
    if not values:
        return false()
    if dialect != "postgresql":
        return column.in_(values)
    element = BigInteger() if isinstance(column.type, Integer) else column.type
    return column == any_(bindparam(None, values, type_=ARRAY(element)))


def encode_cursor(*parts: object) -> str:
    """An opaque cursor for keyset pagination."""
    raw = "|".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(f"v1|{raw}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The parts of a cursor from ``encode_cursor``; raises InvalidArgument when forged or stale."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument("after: not a cursor issued by this API") from exc
    parts = raw.split("|")
    if len(parts) != count + 1 or parts[0] != "v1" or not storable(raw):
        raise InvalidArgument("after: not a cursor issued by this API")
    return parts[1:]


__all__ = [
    "POOL_OPTIONS",
    "STATEMENTS",
    "async_url",
    "decode_cursor",
    "encode_cursor",
    "key_in",
    "make_engine",
    "storable",
]
