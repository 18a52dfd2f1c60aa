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
import datetime as dt
import math
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

import orjson
from prometheus_client import Counter
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Engine,
    Executable,
    Integer,
    MetaData,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    false,
    literal,
    select,
)
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.base import JSON, Health
from connectors.errors import ConnectorConfigError, ConnectorUnavailable, InvalidArgument
from connectors.prepared import OffLoop, PreparedReads

#: Statements sent to each connector's backend; the benchmark and tests read it.
STATEMENTS = Counter("citygraph_backend_statements", "SQL statements sent to backends", ["connector"])


#: Reads that ran out of their inline budget on SQLite and were run again on the driver's thread.
INLINE_FALLBACKS = Counter(
    "citygraph_inline_read_fallbacks", "SQLite reads re-run off the event loop after their inline budget", ["connector"]
)

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
    if make_url(url).get_backend_name() == "sqlite":
        page_cache(engine.sync_engine, sqlite_cache_kib(connector, options))
    counter = STATEMENTS.labels(connector=connector)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_: object) -> None:
        counter.inc()

    return engine


#: Default inline budget of a SQLite read, in milliseconds (connector option ``inline_read_budget_ms``).
INLINE_BUDGET_MS = 20.0

#: Default page cache of each SQLite connection, in KiB (connector option ``sqlite_cache_kib``):
#: better-sqlite3's build default, where Python's sqlite3 keeps SQLite's 2 MB. A page of 100
#: enterprises touches thousands of table pages; with 2 MB most were read again from the OS.
SQLITE_CACHE_KIB = 16_000


def sqlite_cache_kib(connector: str, options: Mapping[str, JSON]) -> int:
    """The connector option ``sqlite_cache_kib`` (default :data:`SQLITE_CACHE_KIB`; 0: SQLite's own)."""
    value = options.get("sqlite_cache_kib", SQLITE_CACHE_KIB)
    # SQLite reads the pragma as a 32-bit number: a larger one would silently become no cache.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise ConnectorConfigError(f"{connector}: sqlite_cache_kib must be a whole number of KiB, 0 to 2147483647")
    return value


def page_cache(engine: Engine, kib: int) -> None:
    """Give each new SQLite connection of ``engine`` a page cache of up to ``kib`` KiB (0: leave
    SQLite's). A connection's cache grows as it reads pages, and keeps them."""
    if kib == 0:
        return

    @event.listens_for(engine, "connect")
    def _cache(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # pysqlite's, or aiosqlite's adapted (synchronous here)
        try:
            cursor.execute(f"PRAGMA cache_size = -{int(kib)}")  # negative: KiB, not pages
        finally:
            cursor.close()


def _dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """A result's rows as dicts. Zipping the column names with each row costs less than half of
    ``dict(row_mapping)``, whose lookups go through the mapping's Python-level key resolution."""
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result.all()]


class Reader:
    """Runs a connector's read statements; rows come back as dicts.

    On a SQLite file, a read first runs *inline*: through SQLAlchemy's synchronous pysqlite engine
    on the event loop's own thread, as the Node peers' better-sqlite3 does. A small indexed read,
    nearly every read a gateway makes, then costs no thread hand-offs: through aiosqlite, each
    cursor, execute and fetch is a queue put and a GIL hand-over to its worker thread, which was a
    third of the event loop's time on the reference queries. A SQLite progress handler interrupts an
    inline read after ``budget_ms``, so the loop is never held longer; the read is then run again
    on the async engine (aiosqlite's thread), where the connector's timeout can cancel it, and
    counted in ``citygraph_inline_read_fallbacks_total``. Other backends, in-memory SQLite and a
    budget of 0 always use the async engine.
    """

    def __init__(
        self,
        connector: str,
        engine: AsyncEngine,
        budget_ms: float = INLINE_BUDGET_MS,
        cache_kib: int = SQLITE_CACHE_KIB,
        apsw: bool = True,
    ) -> None:
        self._engine = engine
        self._budget_s = budget_ms / 1000
        self._deadline = math.inf
        self._fallbacks = INLINE_FALLBACKS.labels(connector=connector)
        self._inline = self._inline_engine(connector, engine, cache_kib) if budget_ms > 0 else None
        self._prepared = (
            PreparedReads(self._inline, apsw=apsw, progress=self._overdue, cache_kib=cache_kib)
            if self._inline is not None
            else None
        )

    def _overdue(self) -> bool:
        """The progress handler of inline reads: called every 1,000 SQLite VM steps (microseconds),
        a true answer interrupts the read."""
        return time.monotonic() > self._deadline

    def _inline_engine(self, connector: str, engine: AsyncEngine, cache_kib: int) -> Engine | None:
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or "memory" in str(url):
            return None  # another backend, or a private in-memory database the sync engine cannot see
        inline = create_engine(
            url.set(drivername="sqlite"),
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            connect_args={"check_same_thread": False},
        )
        page_cache(inline, cache_kib)
        counter = STATEMENTS.labels(connector=connector)

        @event.listens_for(inline, "connect")
        def _budget(dbapi_connection: Any, _record: object) -> None:
            dbapi_connection.set_progress_handler(self._overdue, 1000)

        @event.listens_for(inline, "before_cursor_execute")
        def _start(*_: object) -> None:
            counter.inc()
            # The budget starts when the statement does: compiling it (the first time, milliseconds
            # for a ranked subquery) is not the database holding the loop, and counting it would
            # interrupt a fast read and run it again.
            self._deadline = time.monotonic() + self._budget_s

        return inline

    async def rows(self, query: Executable, params: Mapping[str, object] | None = None) -> list[dict[str, Any]]:
        """The rows of ``query`` with ``params`` bound, as new dicts the caller owns (a connector
        may rename or adjust a row in place); driver errors propagate."""
        bound = dict(params) if params else None
        inline, prepared = self._inline, self._prepared
        if inline is not None and prepared is not None:
            try:  # the budget starts in the inline engine's before_cursor_execute listener
                ready = prepared.prepare(query, bound)
                if ready is not None and (rows := prepared.run(ready)) is not None:
                    return rows
                with inline.connect() as conn:
                    return _dicts(conn.execute(query, bound))
            except OffLoop:
                self._fallbacks.inc()
            except (OperationalError, sqlite3.OperationalError) as exc:
                if "interrupted" not in str(getattr(exc, "orig", exc)):
                    raise
                self._fallbacks.inc()
            finally:
                self._deadline = math.inf
        async with self._engine.connect() as conn:
            return _dicts(await conn.execute(query, bound))

    @property
    def engines(self) -> tuple[Engine, ...]:
        """The synchronous engines a read may go through (for statement listeners): the async
        engine's, then the inline engine when there is one."""
        return (self._engine.sync_engine,) if self._inline is None else (self._engine.sync_engine, self._inline)

    def dispose(self) -> None:
        """Close the inline engine's connections (the async engine is the connector's to dispose)."""
        if self._prepared is not None:
            self._prepared.close()
        if self._inline is not None:
            self._inline.dispose()


class Database:
    """A SQLAlchemy connector's database: its engine and :class:`Reader` while open, schema
    creation, the health probe, and reads whose driver errors become ``ConnectorUnavailable``.

    ``probe`` is the table the health check reads one row of. Using it before :meth:`open` (or
    after :meth:`aclose`) raises ``ConnectorUnavailable``.
    """

    def __init__(self, connector: str, url: str, options: Mapping[str, JSON], metadata: MetaData, probe: Table) -> None:
        self.connector = connector
        self.url = url
        self.options = options
        self._metadata = metadata
        self._probe = select(literal(1)).select_from(probe).limit(1)
        self._engine: AsyncEngine | None = None
        self._reader: Reader | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise ConnectorUnavailable(f"{self.connector} connector is not open")
        return self._engine

    @property
    def reader(self) -> Reader:
        """What reads go through (its engines, for statement listeners)."""
        if self._reader is None:
            raise ConnectorUnavailable(f"{self.connector} connector is not open")
        return self._reader

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def open(self) -> bool:
        """Create the engine and reader; ``False`` when already open."""
        if self._engine is not None:
            return False
        self._engine = make_engine(self.connector, self.url, self.options)
        self._reader = Reader(
            self.connector,
            self._engine,
            inline_budget_ms(self.connector, self.options),
            sqlite_cache_kib(self.connector, self.options),
            apsw_reads(self.connector, self.options),
        )
        return True

    async def create_schema(self) -> None:
        """Create the tables if missing (demo and test databases; production runs
        ``connectors.migrate.migrate``, which adopts a database this made)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self._metadata.create_all)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.dispose()
            self._reader = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def health(self) -> Health:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(self._probe)
        except Exception as exc:
            return Health(ok=False, detail=f"{type(exc).__name__}")
        return Health(ok=True)

    async def rows(self, query: Executable, params: Mapping[str, object] | None = None) -> list[dict[str, Any]]:
        """:meth:`Reader.rows`; a driver error means the backend is unavailable, not the gateway."""
        try:
            return await self.reader.rows(query, params)
        except ConnectorUnavailable:
            raise
        except Exception as exc:
            raise ConnectorUnavailable(f"{self.connector} database error: {type(exc).__name__}") from exc


class DatabaseBacked:
    """The lifecycle half of the connector contract for a connector whose data is one
    :class:`Database`, ``self.db``: open, schema, close, health, and its engines for listeners.
    A connector that does more on open overrides :meth:`open` and calls ``self.db.open()``."""

    db: Database

    @property
    def engine(self) -> AsyncEngine:
        return self.db.engine

    @property
    def reader(self) -> Reader:
        """What the connector's reads go through (its engines, for statement listeners)."""
        return self.db.reader

    async def open(self) -> None:
        self.db.open()

    async def create_schema(self) -> None:
        await self.db.create_schema()

    async def aclose(self) -> None:
        await self.db.aclose()

    async def health(self) -> Health:
        return await self.db.health()


def inline_budget_ms(connector: str, options: Mapping[str, JSON]) -> float:
    """The connector option ``inline_read_budget_ms`` (default :data:`INLINE_BUDGET_MS`, 0: off)."""
    value = options.get("inline_read_budget_ms", INLINE_BUDGET_MS)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConnectorConfigError(f"{connector}: inline_read_budget_ms must be a number of milliseconds >= 0")
    return float(value)


def apsw_reads(connector: str, options: Mapping[str, JSON]) -> bool:
    """The connector option ``apsw_reads`` (default true): prepared inline reads of a SQLite file
    on APSW's SQLite (``connectors.prepared``); false keeps them on Python's ``sqlite3``."""
    value = options.get("apsw_reads", True)
    if not isinstance(value, bool):
        raise ConnectorConfigError(f"{connector}: apsw_reads must be true or false")
    return value


def utc(moment: dt.datetime) -> dt.datetime:
    """A naive ``moment`` read back from SQLite, which drops the zone of what we store in UTC, as
    UTC. By ``combine``: ``moment.replace(tzinfo=...)`` parses its keywords at about five times
    the cost (0.75 µs here), once per row of a page."""
    return dt.datetime.combine(moment, moment.time(), dt.UTC)


def storable(value: str) -> bool:
    """Whether a text column of either backend could hold ``value``: PostgreSQL text cannot
    contain NUL, and a lone surrogate is not UTF-8. A value that is not storable equals no row."""
    if "\x00" in value:
        return False
    if value.isascii():  # the common case (keys, codes), and ASCII always encodes
        return True
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


_T = TypeVar("_T")
_C = TypeVar("_C", bound=ColumnElement[Any])

#: The bind parameter holding a batch's keys in statements built with :func:`keys_in`.
KEYS = "keys"


def keys_in(column: ColumnElement[Any], dialect: str, name: str = KEYS) -> ColumnElement[bool]:
    """``column IN :name`` for a batch bound at execution (:func:`key_values`), so one statement
    object serves every batch (:class:`StatementCache`).

    SQLite gets an expanding ``IN``; PostgreSQL ``column = ANY(:name)`` with one array parameter,
    as in :func:`key_in` (integer keys bind as BIGINT there). An empty batch matches nothing.
    """
    if dialect != "postgresql":
        return column.in_(bindparam(name, expanding=True))
    element = BigInteger() if isinstance(column.type, Integer) else column.type
    return column == any_(bindparam(name, type_=ARRAY(element)))


def key_values(keys: Sequence[object]) -> list[object]:
    """The keys of a batch that a column could hold (:func:`storable`): the others find nothing."""
    return [k for k in keys if not isinstance(k, str) or storable(k)]


def bind_text(shape: list[str], params: dict[str, object], name: str, value: str) -> None:
    """Add a search condition on text ``value`` to a statement's ``shape`` and bound ``params``: ``name``,
    or ``name + "!"`` for a value no column can hold (PostgreSQL would refuse the parameter), which
    the statement builds as a condition matching nothing."""
    if storable(value):
        shape.append(name)
        params[name] = value
    else:
        shape.append(name + "!")


def projected(
    columns: Sequence[_C],
    fields: frozenset[str] | None,
    always: frozenset[str],
    reads: Mapping[str, tuple[str, ...]],
) -> tuple[_C, ...]:
    """Projection: the ``columns`` that records carrying ``fields`` (Python names) need, in order.

    A field reads the columns ``reads`` names for it, or the column of its own name; ``always``
    (keys, relations, cursors) are read whatever is selected, and alone when ``fields`` is empty
    (the operation selects only links). ``None`` (not known), or a field this does not know,
    reads every column: a record is never missing what a resolver might read. Columns are
    matched by ``key`` (a label's name for labelled columns).
    """
    if fields is None:
        return tuple(columns)
    known = {c.key for c in columns}
    names = set(always)
    for name in fields:
        wanted = reads.get(name, (name,))
        if not known.issuperset(wanted):
            return tuple(columns)
        names.update(wanted)
    return tuple(c for c in columns if c.key in names)


def filter_key(row_filter: object) -> bytes:
    """A cache key for a policy row filter (decoded JSON): equal filters give equal keys."""
    return orjson.dumps(row_filter, option=orjson.OPT_SORT_KEYS)


class StatementCache:
    """Statements built once per shape and reused, values bound at execution.

    Building a SQLAlchemy statement costs far more than running a small indexed query (a ranked
    subquery, about 1 ms of CPU); a reused statement object also keeps its memoised compile-cache
    key. Keys name the shape: the entity, the row filter (:func:`filter_key`), which optional
    conditions apply. Bounded, least recently used first out, since row filters vary by principal.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """The statement cached under ``key``, built by ``build`` on first use."""
        try:
            self._items.move_to_end(key)
            item: _T = self._items[key]
        except KeyError:
            item = self._items[key] = build()
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return item

    def __len__(self) -> int:
        return len(self._items)


def encode_cursor(*parts: object) -> str:
    """An opaque cursor for keyset pagination."""
    raw = "|".join(map(str, parts))
    return base64.urlsafe_b64encode(f"v1|{raw}".encode()).decode().rstrip("=")


class Cursors(Sequence[str], Generic[_T]):
    """A page's cursors, each encoded (``encode_cursor(*parts(item))``) only when read.

    A connector answers a cursor for every record, and most operations read only the last
    (``pageInfo.endCursor``): a list of nodes needs none of the others."""

    __slots__ = ("_items", "_parts")

    def __init__(self, items: Sequence[_T], parts: Callable[[_T], tuple[object, ...]]) -> None:
        self._items = items
        self._parts = parts

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [encode_cursor(*self._parts(item)) for item in self._items[index]]
        return encode_cursor(*self._parts(self._items[index]))

    def __eq__(self, other: object) -> bool:
        """Equal to a list or ``Cursors`` of the same cursors, as a list would be."""
        if isinstance(other, Cursors | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-sequence semantics, as a list's

    def __repr__(self) -> str:
        return f"Cursors({list(self)!r})"


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
    "INLINE_BUDGET_MS",
    "INLINE_FALLBACKS",
    "KEYS",
    "POOL_OPTIONS",
    "Database",
    "DatabaseBacked",
    "Reader",
    "STATEMENTS",
    "async_url",
    "decode_cursor",
    "StatementCache",
    "Cursors",
    "encode_cursor",
    "filter_key",
    "inline_budget_ms",
    "page_cache",
    "sqlite_cache_kib",
    "key_in",
    "key_values",
    "keys_in",
    "make_engine",
    "projected",
    "storable",
]
