"""connectors.sql.Reader and StatementCache on SQLite files: inline reads, the budget, fallbacks."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, MetaData, Table, bindparam, column, func, literal_column, select, table, text
from sqlalchemy.exc import OperationalError

from connectors.base import FetchRequest
from connectors.credit import CreditConnector
from connectors.errors import ConnectorConfigError
from connectors.sql import (
    INLINE_FALLBACKS,
    STATEMENTS,
    Database,
    Reader,
    StatementCache,
    apsw_reads,
    inline_budget_ms,
    make_engine,
    sqlite_cache_kib,
)

numbers = table("numbers", column("n", Integer))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "numbers.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO numbers VALUES (?)", [(i,) for i in range(1, 2001)])
    return path


def _counter(name: str) -> float:
    return float(STATEMENTS.labels(connector=name)._value.get())


def _fallbacks(name: str) -> float:
    return float(INLINE_FALLBACKS.labels(connector=name)._value.get())


async def test_a_small_read_runs_inline_on_the_event_loop_thread(db: Path) -> None:
    engine = make_engine("reader-inline", f"sqlite+aiosqlite:///{db}", {})
    reader = Reader("reader-inline", engine)
    before = _counter("reader-inline")
    query = select(numbers.c.n).where(numbers.c.n.in_(bindparam("keys", expanding=True))).order_by(numbers.c.n)
    try:
        rows = await reader.rows(query, {"keys": [3, 1, 2000, 5000]})
        assert [r["n"] for r in rows] == [1, 3, 2000]
        # Counted once, by the inline engine: the async engine was never asked.
        assert _counter("reader-inline") == before + 1
        assert _fallbacks("reader-inline") == 0
        # The inline engine holds its own pooled connection; the async engine opened none.
        assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]
        # It ran prepared (connectors.prepared): the statement's shape is kept for the next read.
        assert reader._prepared is not None and len(reader._prepared._shapes) == 1
    finally:
        reader.dispose()
        await engine.dispose()


async def test_a_read_over_its_budget_is_interrupted_and_run_again_off_the_loop(db: Path) -> None:
    engine = make_engine("reader-slow", f"sqlite+aiosqlite:///{db}", {})
    reader = Reader("reader-slow", engine, budget_ms=1)
    # A cross join of 2000 x 2000 rows counted: a fraction of a second, far over a 1 ms budget inline.
    a, b = numbers.alias("a"), numbers.alias("b")
    slow = select(func.count()).select_from(a.join(b, literal_column("1") == 1)).where(a.c.n + b.c.n == 3)
    try:
        loop_blocked_for: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            # How long the event loop went without running this task while the read was on.
            loop = asyncio.get_running_loop()
            last = loop.time()
            while not done.is_set():
                await asyncio.sleep(0.001)
                now = loop.time()
                loop_blocked_for.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        rows = await reader.rows(slow)
        done.set()
        await tick
        assert list(rows[0].values()) == [2]  # (1, 2) and (2, 1), counted off the loop
        assert len(loop_blocked_for) > 10, "the loop did not run while the read was re-run off it"
        assert max(loop_blocked_for) < 0.25, "the inline read held the event loop past its budget"
        assert _fallbacks("reader-slow") == 1
        assert max(loop_blocked_for) < 0.25, "the inline read held the event loop past its budget"
        # A read within budget on the same reader still answers inline.
        rows = await reader.rows(select(numbers.c.n).where(numbers.c.n == 7))
        assert [r["n"] for r in rows] == [7] and _fallbacks("reader-slow") == 1
    finally:
        reader.dispose()
        await engine.dispose()


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "through-sqlalchemy"])
async def test_the_budget_starts_after_the_statement_is_compiled(
    db: Path, monkeypatch: pytest.MonkeyPatch, prepared: bool
) -> None:
    """A slow first compile (a ranked subquery on a busy machine) must not interrupt a fast read
    and run it a second time, whether the read runs prepared or through SQLAlchemy."""
    name = f"reader-compile-{prepared}"
    engine = make_engine(name, f"sqlite+aiosqlite:///{db}", {})
    reader = Reader(name, engine, budget_ms=20)
    assert reader._prepared is not None
    prepare = reader._prepared.prepare

    def slow_prepare(*args: Any) -> Any:
        time.sleep(0.05)  # compiling: over the whole budget
        return prepare(*args) if prepared else None

    monkeypatch.setattr(reader._prepared, "prepare", slow_prepare)
    before = _counter(name)
    try:
        rows = await reader.rows(select(func.sum(numbers.c.n)))  # thousands of VM steps
        assert rows == [{"sum_1": sum(range(1, 2001))}]
        assert _fallbacks(name) == 0
        assert _counter(name) == before + 1  # run once, inline
    finally:
        reader.dispose()
        await engine.dispose()


async def test_an_interrupted_read_gives_the_same_rows_off_the_loop(db: Path) -> None:
    engine = make_engine("reader-rerun", f"sqlite+aiosqlite:///{db}", {})
    reader = Reader("reader-rerun", engine, budget_ms=0.001)  # interrupted at the first check
    try:
        query = select(func.sum(numbers.c.n)).select_from(numbers.join(numbers.alias("m"), text("1 = 1")))
        rows = await reader.rows(query)
        assert rows == [{"sum_1": sum(range(1, 2001)) * 2000}]
        assert _fallbacks("reader-rerun") == 1
    finally:
        reader.dispose()
        await engine.dispose()


async def test_a_busy_file_is_read_off_the_loop_without_holding_it(db: Path) -> None:
    """Another process's write lock: the inline read does not wait for it on the event loop (no
    busy timeout), it is read again on aiosqlite's thread, which waits there until the lock goes.
    (A process's own locks never block it, whichever SQLite library took them: the writer must be
    another process.)"""
    engine = make_engine("reader-busy", f"sqlite+aiosqlite:///{db}", {})
    reader = Reader("reader-busy", engine)
    hold = (
        "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(0.5); c.execute('COMMIT')"
    )
    writer = await asyncio.create_subprocess_exec(sys.executable, "-c", hold, str(db), stdout=asyncio.subprocess.PIPE)
    try:
        assert writer.stdout is not None and await writer.stdout.readline() == b"locked\n"
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        started = time.monotonic()
        rows = await reader.rows(select(numbers.c.n).where(numbers.c.n == 6))
        waited = time.monotonic() - started
        tick.cancel()
        assert [r["n"] for r in rows] == [6] and waited > 0.2  # it waited for the lock...
        assert ticks > 10  # ...off the loop, which went on running
        assert _fallbacks("reader-busy") == 1
    finally:
        await writer.wait()
        reader.dispose()
        await engine.dispose()


async def test_a_read_apsw_does_not_finish_is_answered_off_the_loop_by_sqlalchemy(db: Path) -> None:
    """Text that is not UTF-8 in a row: APSW refuses it, the read is run again through SQLAlchemy
    off the loop, and its error is what the caller gets; the reader still reads other rows inline."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (n INTEGER, t TEXT)")
        conn.execute("INSERT INTO notes VALUES (1, CAST(X'FF' AS TEXT)), (2, 'ok')")
    engine = make_engine("reader-refused", f"sqlite+aiosqlite:///{db}", {})
    reader = Reader("reader-refused", engine)
    notes = table("notes", column("n", Integer), column("t"))
    try:
        with pytest.raises(OperationalError, match="UTF-8"):
            await reader.rows(select(notes.c.t).where(notes.c.n == 1))
        assert _fallbacks("reader-refused") == 1
        assert await reader.rows(select(notes.c.t).where(notes.c.n == 2)) == [{"t": "ok"}]
        assert _fallbacks("reader-refused") == 1
    finally:
        reader.dispose()
        await engine.dispose()


@pytest.mark.parametrize("apsw", [True, False])
async def test_the_apsw_reads_option_chooses_the_driver_of_prepared_reads(db: Path, apsw: bool) -> None:
    database = Database(
        "reader-driver", f"sqlite:///{db}", {"apsw_reads": apsw}, MetaData(), Table("numbers", MetaData())
    )
    database.open()
    try:
        assert [r["n"] for r in await database.rows(select(numbers.c.n).where(numbers.c.n == 9))] == [9]
        prepared = database.reader._prepared
        assert prepared is not None and len(prepared._shapes) == 1  # read prepared either way
        assert (prepared._own is not None, prepared._connection is not None) == (apsw, not apsw)
    finally:
        await database.aclose()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_apsw_reads_option_is_checked(value: object) -> None:
    with pytest.raises(ConnectorConfigError, match="apsw_reads"):
        apsw_reads("credit", {"apsw_reads": value})  # type: ignore[dict-item]
    assert apsw_reads("credit", {}) is True and apsw_reads("credit", {"apsw_reads": False}) is False


async def test_in_memory_sqlite_and_a_zero_budget_never_read_inline(db: Path) -> None:
    memory = make_engine("reader-memory", "sqlite+aiosqlite://", {})
    off = make_engine("reader-off", f"sqlite+aiosqlite:///{db}", {})
    try:
        # A private in-memory database exists only on the async engine's connection.
        async with memory.connect() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        assert Reader("reader-memory", memory)._inline is None
        assert Reader("reader-off", off, budget_ms=0)._inline is None
        rows = await Reader("reader-off", off, budget_ms=0).rows(select(numbers.c.n).where(numbers.c.n == 2))
        assert [r["n"] for r in rows] == [2]
    finally:
        await memory.dispose()
        await off.dispose()


@pytest.mark.parametrize("value", [-1, "20", True, None])
def test_the_inline_budget_option_is_checked(value: object) -> None:
    with pytest.raises(ConnectorConfigError, match="inline_read_budget_ms"):
        inline_budget_ms("credit", {"inline_read_budget_ms": value})  # type: ignore[dict-item]
    assert inline_budget_ms("credit", {}) == 20.0 and inline_budget_ms("credit", {"inline_read_budget_ms": 0}) == 0


@pytest.mark.parametrize(
    ("options", "pragma"), [({}, -16_000), ({"sqlite_cache_kib": 4096}, -4096), ({"sqlite_cache_kib": 0}, -2000)]
)
async def test_sqlite_connections_get_the_configured_page_cache(db: Path, options: dict[str, Any], pragma: int) -> None:
    """Inline and aiosqlite connections alike; 0 leaves SQLite's default (2,000 KiB)."""
    database = Database("reader-cache", f"sqlite:///{db}", options, MetaData(), Table("numbers", MetaData()))
    database.open()
    try:
        async with database.engine.connect() as conn:  # aiosqlite's thread
            assert (await conn.exec_driver_sql("PRAGMA cache_size")).scalar() == pragma
        inline = database.reader.engines[1]
        with inline.connect() as conn:  # the event loop's own, for reads SQLAlchemy runs inline
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == pragma
        prepared = database.reader._prepared  # and prepared reads' own (APSW) connection
        await database.rows(select(literal_column("1").label("one")))
        assert prepared is not None and prepared._own is not None
        assert prepared._own.execute("PRAGMA cache_size").fetchall() == [(pragma,)]
    finally:
        await database.aclose()


@pytest.mark.parametrize("value", [-1, 2**31, "16000", True, 1.5, None])
def test_the_page_cache_option_is_checked(value: object) -> None:
    with pytest.raises(ConnectorConfigError, match="sqlite_cache_kib"):
        sqlite_cache_kib("credit", {"sqlite_cache_kib": value})  # type: ignore[dict-item]
    with pytest.raises(ConnectorConfigError, match="sqlite_cache_kib"):
        make_engine("credit", "sqlite:///x.sqlite", {"sqlite_cache_kib": value})  # type: ignore[dict-item]


def test_the_statement_cache_builds_once_per_key_and_drops_the_least_recently_used() -> None:
    cache = StatementCache(size=2)
    built: list[str] = []

    def build(name: str) -> str:
        built.append(name)
        return name.upper()

    assert cache.get("a", lambda: build("a")) == "A"
    assert cache.get("a", lambda: build("a")) == "A"
    assert cache.get("b", lambda: build("b")) == "B"
    cache.get("a", lambda: build("a"))  # a is now the most recently used
    cache.get("c", lambda: build("c"))  # so b goes
    assert len(cache) == 2
    cache.get("b", lambda: build("b"))
    assert built == ["a", "b", "c", "b"]


async def test_the_credit_connector_answers_alike_inline_and_off_the_loop(demo_dir: Path) -> None:
    url = f"sqlite+aiosqlite:///{demo_dir / 'credit.sqlite'}"
    inline, threaded = CreditConnector(url, {}), CreditConnector(url, {"inline_read_budget_ms": 0})
    await inline.open()
    await threaded.open()
    try:
        with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
            usccs = [r[0] for r in conn.execute("SELECT DISTINCT uscc FROM credit_records ORDER BY uscc LIMIT 20")]
        request = FetchRequest(
            entity="CreditRecord", keys=(*usccs, "nope"), fields=None, row_filter={}, by="uscc", limit=2
        )
        assert await inline.fetch_related(request) == await threaded.fetch_related(request)
        assert any(len(group) == 2 for group in await inline.fetch_related(request))
        assert [] == (await inline.fetch_related(request))[-1]
    finally:
        await inline.aclose()
        await threaded.aclose()
