"""The append-only, hash-chained ``audit_log`` table and its verifier.

Appends are serialised twice, so several gateway processes (replicas) sharing one database
still build a single chain. Within a process one writer task drains a queue of pending
entries (group commit: whatever queued while the previous transaction ran is sealed and
inserted in the next one). Across processes a database lock is held from reading the last row
to committing the new ones:

* SQLite: the transaction starts with ``BEGIN IMMEDIATE`` (the write lock is taken before the
  read); WAL mode and a busy timeout let other processes wait for it instead of failing.
* PostgreSQL: ``pg_advisory_xact_lock`` on a fixed key, released at commit or rollback; the
  transaction is READ COMMITTED whatever the server's default, so the read after the lock sees
  the previous holder's row. ``lock_timeout`` bounds the wait for the lock and
  ``idle_in_transaction_session_timeout`` ends a holder that stops talking (a frozen or
  partitioned replica), so one stuck process cannot stall every replica's appends for long.
* Anything else: no lock; ``seq`` is the primary key, so a racing writer fails its insert (an
  ``AuditWriteError``) rather than forking the chain.

Hashes only prove that the rows present are unaltered and contiguous. Deleting rows from the end
leaves a valid, shorter chain; detecting that needs the head (seq, hash) anchored somewhere the
database's writers cannot rewrite.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
    false,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Engine, Row, RowMapping, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection

from audit.records import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    algorithm_available,
    canonical_bytes,
    chain_hash,
    default_algorithm,
    format_ts,
    parse_ts,
    seal,
)
from connectors.sql import async_url

log = structlog.get_logger(__name__)

DEFAULT_URL = "sqlite+aiosqlite:///var/audit.sqlite"

#: Milliseconds a SQLite connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000

#: Advisory lock key for PostgreSQL appends: ASCII "CGAUDIT", fixed so every process agrees.
PG_LOCK_KEY = 0x43_47_41_55_44_49_54

#: Most entries sealed and inserted in one transaction (one group commit).
MAX_BATCH = 256

# Connection execution option read by the SQLite "begin" hook: the statement that opens the transaction.
_BEGIN_OPTION = "citygraph_audit_begin"

#: The trail's schema: ``audit/migrations`` creates it in production, ``AuditTrail.open`` where missing.
metadata = MetaData()

audit_log = Table(
    "audit_log",
    metadata,
    # INTEGER PRIMARY KEY on SQLite aliases the rowid; BIGINT elsewhere so the log cannot run out.
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    # Stored as the exact text that was hashed (``format_ts``): native timestamp types differ in
    # precision and rendering between databases, and a verifier must reproduce the bytes.
    Column("ts", String(40), nullable=False),
    Column("request_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("purpose", Text, nullable=True),
    Column("case_ref", Text, nullable=True),
    Column("operation_name", Text, nullable=True),
    Column("document_hash", String(128), nullable=False),
    Column("coordinates", Text, nullable=False),  # JSON array of strings
    Column("record_keys", Text, nullable=False),  # JSON object: type name -> array of keys
    Column("policy_revision", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("classification", SmallInteger, nullable=False),
    Column("prev_hash", String(128), nullable=False),
    Column("hash", String(128), nullable=False, unique=True),
    Column("algorithm", String(16), nullable=False),
)

#: The chain's last (seq, hash): what the next record is sealed after.
_LAST_ROW = select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)


def _describe(exc: BaseException) -> str:
    # SQLAlchemy appends the statement and a help link on further lines; the first line says what failed.
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


class AuditWriteError(Exception):
    """The trail could not be opened or a record could not be appended; the caller must fail closed."""


class _RowRefused(Exception):
    """A batch's insert failed after the lock was taken; its entries are retried one by one."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of walking the chain. ``checked`` counts rows found intact before any break."""

    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from sqlite3's legacy transaction control (which issues it lazily and never
    # before a SELECT): ``_sqlite_on_begin`` starts SQLAlchemy's transactions, and appends on a file
    # (``AuditTrail._write_sqlite``) send their own BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Busy timeout first: switching to WAL itself may have to wait for another process.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except Exception as exc:
            # A read-only copy cannot switch modes but can still be verified; correctness of
            # appends rests on BEGIN IMMEDIATE, WAL only lets readers run beside the writer.
            log.warning("audit: sqlite WAL mode not enabled", error=_describe(exc))
        # An acknowledged audit row must survive power loss, which WAL's default NORMAL does not promise.
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


def plain_values(record: AuditRecord) -> dict[str, object]:
    """Every field of a record as plain JSON values (lists and objects), for export and storage."""
    entry = record.entry
    return {
        "seq": record.seq,
        "ts": format_ts(record.ts),
        "request_id": entry.request_id,
        "subject": entry.subject,
        "department": entry.department,
        "purpose": entry.purpose,
        "case_ref": entry.case_ref,
        "operation_name": entry.operation_name,
        "document_hash": entry.document_hash,
        "coordinates": list(entry.coordinates),
        "record_keys": {name: list(keys) for name, keys in entry.record_keys.items()},
        "policy_revision": entry.policy_revision,
        "outcome": entry.outcome,
        "classification": entry.classification,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
        "algorithm": record.algorithm,
    }


def _row_values(record: AuditRecord) -> dict[str, object]:
    row = plain_values(record)
    # Stored as JSON text: the two structured fields are encoded, keys sorted for stable bytes.
    row["coordinates"] = orjson.dumps(row["coordinates"]).decode()
    row["record_keys"] = orjson.dumps(row["record_keys"], option=orjson.OPT_SORT_KEYS).decode()
    return row


#: The appends' statements on a SQLite file (``AuditTrail._write_sqlite``): ``_LAST_ROW`` and the
#: insert as SQLAlchemy compiles them for SQLite, once; the insert's parameters in column order.
_COLUMNS = tuple(column.name for column in audit_log.columns)
_LAST_ROW_SQL = str(_LAST_ROW.compile(dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True}))
_INSERT_SQL = str(insert(audit_log).compile(dialect=sqlite_dialect(), column_keys=list(_COLUMNS)))


def _row_tuple(record: AuditRecord) -> tuple[object, ...]:
    """``_row_values`` in column order, for a positional insert."""
    values = _row_values(record)
    return tuple(values[name] for name in _COLUMNS)


def _decode(row: RowMapping) -> AuditRecord:
    """A stored row as a record, as read (hash unchecked); ``ValueError``/``TypeError`` if malformed."""
    entry = AuditEntry(
        request_id=row["request_id"],
        subject=row["subject"],
        department=row["department"],
        purpose=row["purpose"],
        case_ref=row["case_ref"],
        operation_name=row["operation_name"],
        document_hash=row["document_hash"],
        coordinates=orjson.loads(row["coordinates"]),
        record_keys=orjson.loads(row["record_keys"]),
        policy_revision=row["policy_revision"],
        outcome=row["outcome"],
        classification=row["classification"],
    )
    for name in ("ts", "prev_hash", "hash", "algorithm"):
        if not isinstance(row[name], str):
            raise TypeError(f"{name} must be text")
    return AuditRecord(
        entry=entry,
        seq=row["seq"],
        ts=parse_ts(row["ts"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        algorithm=row["algorithm"],
    )


def _content_problem(row: RowMapping) -> str | None:
    """Why the row's own hash does not hold, or ``None`` if it does."""
    try:
        record = _decode(row)
    except (ValueError, TypeError) as exc:
        return f"row cannot be decoded ({exc})"
    if not algorithm_available(record.algorithm):
        return f"row names hash algorithm {record.algorithm!r}, which is not accepted or not available"
    canonical = canonical_bytes(
        record.entry, seq=record.seq, ts=record.ts, prev_hash=record.prev_hash, algorithm=record.algorithm
    )
    if chain_hash(record.prev_hash, canonical, record.algorithm) != record.hash:
        return "stored hash does not match the row's contents (row altered)"
    return None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What an officer searches the trail by; every given criterion must hold."""

    subject: str | None = None
    department: str | None = None
    purpose: str | None = None
    case_ref: str | None = None
    record_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditTrail:
    """The audit log in one SQLAlchemy database (any async URL; SQLite and PostgreSQL are locked properly).

    ``open`` creates the table if needed; the other methods work against an existing table
    without it. Parent directories of a SQLite file are never created: a missing directory
    usually means a missing volume, and writing somewhere ephemeral instead would lose the log.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        algorithm: str | None = None,
        lock_timeout_s: float = 30.0,
        idle_timeout_s: float = 10.0,
    ) -> None:
        """Raises ``ValueError`` for an unaccepted algorithm; SQLAlchemy errors for a malformed URL.

        On PostgreSQL, an append that waits longer than ``lock_timeout_s`` for another process's
        write lock fails (closed), and a write transaction left idle for ``idle_timeout_s`` is
        ended by the server, releasing the lock; both are server-side, per transaction. Keep
        ``idle_timeout_s`` below ``lock_timeout_s``, so waiters outlast a frozen holder.
        """
        self._algorithm = algorithm or default_algorithm()
        if not algorithm_available(self._algorithm):
            raise ValueError(f"hash algorithm {self._algorithm!r} is not accepted or not available")
        url = async_url(url)  # postgresql:// means asyncpg, sqlite:// aiosqlite
        # hide_parameters: error messages would otherwise carry subjects, purposes and case refs.
        options: dict[str, Any] = {"hide_parameters": True}
        if make_url(url).get_backend_name() != "sqlite":
            # A pooled connection may have died with a server restart; without the ping the next
            # append would fail and withhold a response's data.
            options["pool_pre_ping"] = True
        self._engine = create_async_engine(url, **options)
        self._dialect = self._engine.dialect.name
        self._appender: Engine | None = None
        #: The appender's connection between batches: a batch that committed leaves it clean, so
        #: the next one needs no pool round trip. Taken and given back under the lock: a write left
        #: running by a cancelled drain may overlap the next drain's, each on its own connection.
        self._held: PoolProxiedConnection | None = None
        self._held_lock = threading.Lock()
        self._closed = False  # set by aclose: a write finishing afterwards closes its connection
        if self._dialect == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_on_connect)
            event.listen(self._engine.sync_engine, "begin", _sqlite_on_begin)
            database = make_url(url).database
            if database and database != ":memory:" and "mode=memory" not in url:
                # Appends run whole in one worker thread on the plain sqlite3 driver: one thread hop
                # per batch instead of one per statement (aiosqlite), which cost ~10% of a small
                # request's CPU. The same file, pragmas and BEGIN IMMEDIATE: the lock is the file's.
                self._appender = create_engine(make_url(url).set(drivername="sqlite"), **options)
                event.listen(self._appender, "connect", _sqlite_on_connect)
        # Milliseconds, as text for set_config; at least 1, since 0 would mean "no limit".
        self._pg_timeouts = {
            "lock": str(max(1, round(lock_timeout_s * 1000))),
            "idle": str(max(1, round(idle_timeout_s * 1000))),
        }
        self._pending: list[tuple[AuditEntry, asyncio.Future[AuditRecord]]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def algorithm(self) -> str:
        """The hash algorithm new rows are written with."""
        return self._algorithm

    @asynccontextmanager
    async def _write_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction holding the database-wide audit write lock until it commits or rolls back."""
        async with self._engine.connect() as conn:
            if self._dialect == "sqlite":
                # IMMEDIATE takes the write lock before the first read, so no other process can
                # read the same last hash between our read and our insert.
                conn = await conn.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            elif self._dialect == "postgresql":
                # The read of the last row must see the previous holder's commit. READ COMMITTED
                # takes a snapshot per statement, after the lock; under a server default of
                # REPEATABLE READ the snapshot would date from the lock request and the append
                # would reuse the previous seq.
                conn = await conn.execution_options(isolation_level="READ COMMITTED")
            async with conn.begin():
                if self._dialect == "postgresql":
                    # Transaction-local (is_local = true): pooled connections keep the server's defaults.
                    await conn.execute(
                        text(
                            "SELECT set_config('lock_timeout', :lock, true),"
                            " set_config('idle_in_transaction_session_timeout', :idle, true)"
                        ),
                        self._pg_timeouts,
                    )
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
                yield conn

    async def open(self) -> None:
        """Create ``audit_log`` if missing; ``AuditWriteError`` if the database cannot be reached.

        Production databases get the table from ``audit/migrations`` (``connectors.migrate``);
        a table this made is adopted by the first migration run.
        """
        self._closed = False
        try:
            # Under the write lock, so processes starting together do not race to create the table.
            async with self._write_transaction() as conn:
                await conn.run_sync(metadata.create_all, checkfirst=True)
        except Exception as exc:
            raise AuditWriteError(f"cannot open audit trail: {_describe(exc)}") from exc

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Seal ``entry`` after the current last row and commit it; the record as stored.

        Raises ``AuditWriteError`` on any failure; when it returns, the row is committed.
        Entries appended concurrently in one process may share a transaction (group commit):
        they are committed, or fail, together.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AuditRecord] = loop.create_future()
        self._pending.append((entry, future))
        if self._writer is None or self._writer.done():
            # Its own task, not the request's: a cancelled request must not abort a batch that
            # holds other requests' entries half-way through the transaction.
            self._writer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Write pending entries, a batch per transaction, until none are left."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                self._settle(batch, await self._write([entry for entry, _ in batch]))
            except _RowRefused:
                # The database took the lock but refused a row (text it cannot store, say): write
                # the entries one by one, so one bad entry fails its own request, not its batch's.
                for item in batch:
                    try:
                        self._settle([item], await self._write([item[0]]))
                    except Exception as exc:
                        self._fail([item], exc)
            except BaseException as exc:
                self._fail(batch, exc)
                if not isinstance(exc, Exception):
                    # Cancelled (the loop is shutting down): nobody is left to write the rest.
                    self._fail(self._pending, exc)
                    self._pending = []
                    raise

    @staticmethod
    def _settle(batch: list[tuple[AuditEntry, asyncio.Future[AuditRecord]]], records: list[AuditRecord]) -> None:
        for (_, future), record in zip(batch, records, strict=True):
            if not future.done():  # a cancelled waiter no longer listens
                future.set_result(record)

    @staticmethod
    def _fail(batch: list[tuple[AuditEntry, asyncio.Future[AuditRecord]]], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                error = AuditWriteError(f"audit append failed: {_describe(exc)}")
                error.__cause__ = exc
                future.set_exception(error)

    async def _write(self, entries: list[AuditEntry]) -> list[AuditRecord]:
        """Seal ``entries`` in order after the last row and insert them in one transaction.

        Raises ``_RowRefused`` if the insert itself fails, anything else for other failures.
        """
        if self._appender is not None:
            # If this task is cancelled meanwhile, the thread still commits or rolls back whole;
            # the waiters then fail closed although their rows may exist, which only over-records.
            return await asyncio.to_thread(self._write_sqlite, self._appender, entries)
        async with self._write_transaction() as conn:
            last = (await conn.execute(_LAST_ROW)).first()
            records = self._seal_after(last, entries)
            try:
                await conn.execute(insert(audit_log), [_row_values(record) for record in records])
            except Exception as exc:
                if len(entries) == 1:
                    raise
                raise _RowRefused from exc
        return records

    def _write_sqlite(self, engine: Engine, entries: list[AuditEntry]) -> list[AuditRecord]:
        """:meth:`_write` on a worker thread, for a SQLite file: plain sqlite3 statements on one of
        ``engine``'s pooled connections (its connect hook set the pragmas and took BEGIN away from
        the driver). SQLAlchemy's execution layer around the four statements cost about two fifths
        of a one-entry append's CPU (0.55 → 0.34 ms); the statements and the transaction are the same.

        A batch that commits keeps its connection for the next (checking it out and back in, with
        the pool's reset, was most of the rest of this thread's Python work); any failure returns
        it to the pool, which rolls back or discards it."""
        with self._held_lock:
            pooled, self._held = self._held, None
        if pooled is None:
            pooled = engine.raw_connection()
        committed = False
        try:
            connection = pooled.dbapi_connection
            assert connection is not None  # noqa: S101 (a checked-out connection has one)
            # IMMEDIATE takes the write lock before the first read (see _write_transaction).
            connection.execute("BEGIN IMMEDIATE")
            try:
                records = self._seal_after(connection.execute(_LAST_ROW_SQL).fetchone(), entries)
                try:
                    connection.executemany(_INSERT_SQL, [_row_tuple(record) for record in records])
                except Exception as exc:
                    if len(entries) == 1:
                        raise
                    raise _RowRefused from exc
                connection.execute("COMMIT")
                committed = not connection.in_transaction
            except BaseException:
                if connection.in_transaction:
                    try:
                        connection.execute("ROLLBACK")
                    except Exception as undone:
                        # What failed first is what the waiters learn (and a refused row is still
                        # retried alone); the pool resets or discards the connection on return.
                        log.warning("audit: rollback failed", error=_describe(undone))
                raise
        finally:
            self._give_back(pooled, keep=committed)
        return records

    def _give_back(self, pooled: PoolProxiedConnection, *, keep: bool) -> None:
        """Hold ``pooled`` for the next batch when ``keep`` and nothing else is held and the trail
        is open; else return it to the pool (which rolls back an open transaction)."""
        with self._held_lock:
            if keep and self._held is None and not self._closed:
                self._held = pooled
                return
        pooled.close()

    def _seal_after(self, last: Row[Any, Any] | tuple[Any, ...] | None, entries: list[AuditEntry]) -> list[AuditRecord]:
        """``entries`` sealed in order after ``last`` (the chain's last (seq, hash), or None)."""
        seq, prev_hash = (0, GENESIS_HASH) if last is None else (int(last[0]), str(last[1]))
        records = []
        for entry in entries:
            seq += 1
            record = seal(entry, seq=seq, ts=datetime.now(UTC), prev_hash=prev_hash, algorithm=self._algorithm)
            records.append(record)
            prev_hash = record.hash
        return records

    async def verify(self, *, chunk_size: int = 1000) -> VerifyReport:
        """Walk every row in seq order, ``chunk_size`` rows at a time, and report the first break.

        Checks that seq runs 1, 2, 3, ... without gaps, that each ``prev_hash`` is the previous
        row's hash (``GENESIS_HASH`` for seq 1) and that each row's hash matches its contents.
        A missing row is reported at the first missing seq. Raises on database errors (a trail
        that cannot be read is not reported as intact or as broken).
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
        last_seq: int | None = None
        async with self._engine.connect() as conn:
            while True:
                query = select(audit_log).order_by(audit_log.c.seq).limit(chunk_size)
                # No lower bound on the first chunk, so a stray row with seq < 1 is seen too.
                if last_seq is not None:
                    query = query.where(audit_log.c.seq > last_seq)
                rows = (await conn.execute(query)).mappings().all()
                # End the read transaction between chunks so a long verify does not pin the WAL.
                await conn.rollback()
                if not rows:
                    break
                for row in rows:
                    seq = row["seq"]
                    if not isinstance(seq, int) or seq != expected_seq:
                        return VerifyReport(False, checked, *_seq_problem(seq, expected_seq))
                    if row["prev_hash"] != prev_hash:
                        previous = "the genesis hash" if seq == 1 else f"the hash of seq {seq - 1}"
                        return VerifyReport(False, checked, seq, f"seq {seq}: prev_hash is not {previous}")
                    problem = _content_problem(row)
                    if problem is not None:
                        return VerifyReport(False, checked, seq, f"seq {seq}: {problem}")
                    prev_hash, expected_seq, last_seq, checked = row["hash"], seq + 1, seq, checked + 1
        if last_seq is None:
            return VerifyReport(True, 0, None, "trail is empty")
        return VerifyReport(True, checked, None, f"chain intact; head seq {last_seq} hash {prev_hash}")

    async def writable(self) -> bool:
        """Whether an append could be written now, without writing one.

        Runs an ``INSERT ... SELECT`` that selects nothing and rolls it back: the database still
        checks that it is reachable, writable, has the table and grants INSERT.
        """
        try:
            async with self._engine.connect() as conn:
                columns = list(audit_log.c)
                await conn.execute(insert(audit_log).from_select(columns, select(*columns).where(false())))
                await conn.rollback()
        except Exception as exc:
            log.warning("audit trail not writable", error=_describe(exc))
            return False
        return True

    async def records(self, after_seq: int = 0, limit: int = 100) -> list[AuditRecord]:
        """Up to ``limit`` records with seq greater than ``after_seq``, in seq order (hashes not checked).

        Raises ``ValueError``/``TypeError`` if a stored row is malformed (``verify`` says where).
        """
        if limit < 0:
            raise ValueError("limit must not be negative")
        query = select(audit_log).where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_decode(row) for row in rows]

    async def search(self, criteria: AuditQuery, *, after_seq: int = 0, limit: int = 100) -> list[AuditRecord]:
        """Records matching ``criteria``, newest first, seq below ``after_seq`` when given (bound parameters)."""
        c = audit_log.c
        conditions = []
        for column, value in (
            (c.subject, criteria.subject),
            (c.department, criteria.department),
            (c.purpose, criteria.purpose),
            (c.case_ref, criteria.case_ref),
        ):
            if value is not None:
                conditions.append(column == value)
        if criteria.record_key is not None:
            # record_keys is a JSON object of arrays of strings; a key matches as a whole JSON string,
            # case-sensitively on every backend (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
            token = json.dumps(criteria.record_key, ensure_ascii=False)
            if self._dialect == "sqlite":
                conditions.append(func.instr(c.record_keys, token) > 0)
            elif self._dialect == "postgresql":
                conditions.append(func.strpos(c.record_keys, token) > 0)
            else:
                escaped = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                conditions.append(c.record_keys.like(f"%{escaped}%", escape="\\"))
        if criteria.since is not None:
            conditions.append(c.ts >= format_ts(criteria.since))
        if criteria.until is not None:
            conditions.append(c.ts <= format_ts(criteria.until))
        if after_seq:
            conditions.append(c.seq < after_seq)
        query = select(audit_log).where(*conditions).order_by(c.seq.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_decode(row) for row in rows]

    async def aclose(self) -> None:
        """Finish the appends already queued, then close every pooled connection. Idempotent."""
        writer = self._writer
        if writer is not None and not writer.done() and writer.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([writer])
        await self._engine.dispose()
        with self._held_lock:
            held, self._held, self._closed = self._held, None, True
        if held is not None:
            held.close()  # checked out: dispose would leave it open
        if self._appender is not None:
            self._appender.dispose()

    async def __aenter__(self) -> AuditTrail:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


def _seq_problem(seq: object, expected: int) -> tuple[int | None, str]:
    """Where and why the sequence breaks when ``seq`` arrives where ``expected`` should."""
    if isinstance(seq, int) and seq > expected:
        missing = f"seq {expected} is" if seq == expected + 1 else f"seqs {expected}..{seq - 1} are"
        missing += " missing"
        return expected, f"{missing} (next row present is seq {seq}): rows were deleted"
    if isinstance(seq, int):
        return seq, f"unexpected seq {seq} where seq {expected} should be"
    return None, f"non-integer seq {seq!r} where seq {expected} should be"


__all__ = [
    "audit_log",
    "plain_values",
    "AuditQuery",
    "AuditTrail",
    "AuditWriteError",
    "DEFAULT_URL",
    "MAX_BATCH",
    "metadata",
    "PG_LOCK_KEY",
    "SQLITE_BUSY_TIMEOUT_MS",
    "VerifyReport",
]
