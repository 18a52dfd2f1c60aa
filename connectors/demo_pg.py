"""Demo data into PostgreSQL: migrate the schema, then bulk-copy a demo SQLite file into it.

The demo generators (``connectors/credit/demo.py``, ``connectors/license/demo.py``) write SQLite
files; :func:`copy_sqlite_to` puts the same rows into a PostgreSQL database, so a department's
test instance or ``citygraph demo-data --to postgresql://...`` serves exactly what the SQLite
demo serves. Values are read through the tables' SQLAlchemy types (dates, ``Decimal`` amounts,
booleans), so they arrive typed, not as SQLite's text and floats.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import ClauseElement, Column, DateTime, MetaData, Table, create_engine, exists, func, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.sql.compiler import SQLCompiler

from connectors.migrate import component_for, migrate_async

#: Rows sent per ``COPY`` call: large enough to amortise round trips, small enough to bound memory.
BATCH_ROWS = 5000


_DIALECT: Dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialects are untyped


def dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a SQLAlchemy PostgreSQL URL of any driver."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sql(statement: ClauseElement) -> tuple[Any, ...]:
    """``statement`` as asyncpg's SQL text and positional parameters (identifiers quoted by the dialect)."""
    compiled = statement.compile(dialect=_DIALECT)
    if not isinstance(compiled, SQLCompiler):  # a DDL element: not what this module sends
        raise TypeError(f"not a SQL statement: {statement!r}")
    return (compiled.string, *(compiled.params[name] for name in compiled.positiontup or ()))


def _converter(column: Column[Any]) -> Callable[[Any], Any] | None:
    """How a value read from SQLite must change before PostgreSQL takes it (``None``: as it is)."""
    if isinstance(column.type, DateTime) and column.type.timezone:
        # SQLite's dialect stores naive UTC text (the zone is dropped on write): re-attach UTC,
        # or asyncpg would read a naive value as the host's local time.
        return lambda v: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v
    return None


def _check_source(source: Connection, tables: Sequence[Table]) -> None:
    present = {
        name: {row[1] for row in source.exec_driver_sql(f'PRAGMA table_info("{name}")')}
        for name in (t.name for t in tables)
    }
    for table in tables:
        missing = [c.name for c in table.columns if c.name not in present[table.name]]
        if missing:
            raise ValueError(f"{table.name}: the SQLite file lacks column(s) {', '.join(missing)}")


async def copy_sqlite_to_async(url: str, sqlite_path: Path, metadata: MetaData, batch_rows: int = BATCH_ROWS) -> int:
    """:func:`copy_sqlite_to` for use inside a running event loop (no argument checks: call that one)."""
    await migrate_async(component_for(metadata), url)
    tables = list(metadata.sorted_tables)  # parents first, so each table's foreign keys hold
    target = await asyncpg.connect(dsn(url))
    # Read-only: a wrong path must not leave an empty SQLite file behind.
    engine = create_engine(f"sqlite:///file:{sqlite_path}?mode=ro&uri=true")
    copied = 0
    try:
        with engine.connect() as source:
            _check_source(source, tables)
            for table in tables:
                if await target.fetchval(*_sql(select(exists().select_from(table)))):
                    raise ValueError(f"{table.name} already has rows in the target database; copy into an empty one")
            for table in tables:
                copied += await _copy_table(source, target, table, batch_rows)
    finally:
        engine.dispose()
        await target.close()
    return copied


async def _copy_table(source: Connection, target: Any, table: Table, batch_rows: int) -> int:
    names = [c.name for c in table.columns]
    converters = [(i, f) for i, f in ((i, _converter(c)) for i, c in enumerate(table.columns)) if f is not None]
    result = source.execution_options(yield_per=batch_rows).execute(select(table))
    count = 0
    # One transaction per table: a failure leaves that table empty, the ones before it complete.
    async with target.transaction():
        for rows in result.partitions():
            records = [tuple(row) for row in rows]
            if converters:
                records = [_convert(record, converters) for record in records]
            await target.copy_records_to_table(table.name, records=records, columns=names)
            count += len(records)
        column = table.autoincrement_column
        if column is not None:
            # Rows arrived with their ids: move the column's sequence past them for later inserts.
            sequence = func.pg_get_serial_sequence(_DIALECT.identifier_preparer.format_table(table), column.name)
            last = func.max(column)
            await target.fetchval(*_sql(select(func.setval(sequence, func.coalesce(last, 1), last.is_not(None)))))
    # Planner statistics now rather than at autovacuum's leisure: the first queries get index plans.
    await target.execute("ANALYZE " + _DIALECT.identifier_preparer.format_table(table))
    return count


def _convert(record: tuple[Any, ...], converters: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple[Any, ...]:
    values = list(record)
    for index, convert in converters:
        values[index] = convert(values[index])
    return tuple(values)


def copy_sqlite_to(url: str, sqlite_path: Path, metadata: MetaData, *, batch_rows: int = BATCH_ROWS) -> int:
    """Migrate the schema of ``metadata`` at the PostgreSQL ``url`` and copy every table of
    ``metadata`` from the SQLite file ``sqlite_path`` into it; the number of rows copied.

    ``url`` may name any PostgreSQL driver (``postgresql://``, ``postgresql+asyncpg://``);
    ``metadata`` is a component's (``connectors.credit.tables.metadata``, ...): tables outside it,
    such as the license demo's ``demo_cases``, are not copied. Rows go in with ``COPY``
    (asyncpg ``copy_records_to_table``) in batches of ``batch_rows``, parents before children,
    one transaction per table; sequences are moved past the copied ids and each table is analysed.
    Every target table must be empty (``ValueError`` otherwise, before anything is copied); the
    copy is not resumable: after a failure, drop the database and run it again.
    ``FileNotFoundError`` if ``sqlite_path`` does not exist. Must be called outside a running event loop.
    """
    if make_url(url).get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"copy_sqlite_to needs a PostgreSQL URL, got {make_url(url).drivername}://")
    path = Path(sqlite_path)
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite database at {path}")
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    return asyncio.run(copy_sqlite_to_async(url, path.resolve(), metadata, batch_rows))


__all__ = ["BATCH_ROWS", "copy_sqlite_to", "copy_sqlite_to_async", "dsn"]
