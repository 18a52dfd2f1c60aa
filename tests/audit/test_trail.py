"""The audit trail against real databases: chaining, tamper detection, concurrency, failure.

Tests taking ``store`` run on a SQLite file and on PostgreSQL (whose database defaults to
REPEATABLE READ here, so appends prove they read under READ COMMITTED); the rest are about
SQLite files and the command line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import multiprocessing
import re
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import event

from audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    AuditTrail,
    AuditWriteError,
    canonical_bytes,
    chain_hash,
    default_algorithm,
    seal,
    verify_command,
)
from tests.postgres import BACKENDS, PgServer, execute, throwaway_database


def make_entry(n: int = 0, *, request_id: str | None = None) -> AuditEntry:
    return AuditEntry(
        request_id=request_id or f"req-{n}",
        subject="officer-7",
        department="market-supervision",
        purpose="inspection",
        case_ref=f"CASE-{n}" if n % 2 else None,
        operation_name="CreditLookup",
        document_hash="ab" * 32,
        coordinates=("Query.creditRecords", "CreditRecord.legalRepIdNumber"),
        record_keys={"CreditRecord": (f"k{n}", f"k{n + 1}"), "Company": ("c1",)},
        policy_revision="rev-42",
        outcome="ok",
        classification=3,
    )


def url_for(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.sqlite"


@dataclass(frozen=True)
class Store:
    """An empty audit database, and a way to tamper with it as someone with database access would."""

    url: str
    sqlite_path: Path | None

    async def tamper(self, statement: str, *params: object) -> None:
        """Run ``statement`` (``?`` placeholders) directly, bypassing the trail."""
        if self.sqlite_path is not None:
            raw_sql(self.sqlite_path, statement, params)
            return
        numbered = iter(range(1, len(params) + 1))
        await execute(self.url, re.sub(r"\?", lambda _: f"${next(numbered)}", statement), *params)


@pytest.fixture(scope="module")
def pg_audit_url(pg_server: PgServer) -> Iterator[str]:
    # REPEATABLE READ by default: a snapshot taken before the advisory lock would fork the chain.
    with throwaway_database(pg_server, "audit", default_transaction_isolation="repeatable read") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, db_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(url_for(db_path), db_path)
    url: str = request.getfixturevalue("pg_audit_url")
    asyncio.run(execute(url, "DROP TABLE IF EXISTS audit_log"))  # each test starts without a trail
    return Store(url, None)


@pytest.fixture
async def trail(store: Store) -> AsyncIterator[AuditTrail]:
    opened = AuditTrail(store.url)
    try:
        await opened.open()
        yield opened
    finally:
        await opened.aclose()


async def fill(trail: AuditTrail, count: int) -> list[AuditRecord]:
    return [await trail.append(make_entry(n)) for n in range(count)]


def raw_sql(db_path: Path, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Tamper with the file directly, as someone with database access but no gateway would."""
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute(statement, params)
        conn.commit()


# -- records -----------------------------------------------------------------------------------------


def test_canonical_bytes_cover_every_field_but_hash() -> None:
    ts = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    record = seal(make_entry(1), seq=7, ts=ts, prev_hash=GENESIS_HASH, algorithm=default_algorithm())
    canonical = canonical_bytes(
        record.entry, seq=7, ts=record.ts, prev_hash=record.prev_hash, algorithm=record.algorithm
    )
    document = orjson.loads(canonical)
    assert "hash" not in document
    assert set(document) == {f.name for f in dataclasses.fields(AuditEntry)} | {
        "seq",
        "ts",
        "prev_hash",
        "algorithm",
    }
    assert document["ts"] == "2026-01-02T03:04:05.000006Z"
    assert document["coordinates"] == ["Query.creditRecords", "CreditRecord.legalRepIdNumber"]  # order kept
    assert canonical.index(b'"Company"') < canonical.index(b'"CreditRecord"')  # keys sorted
    assert record.hash == chain_hash(GENESIS_HASH, canonical, record.algorithm)
    assert len(record.hash) == 64


def test_same_instant_in_another_zone_hashes_the_same() -> None:
    utc = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    shanghai = utc.astimezone(timezone(timedelta(hours=8)))
    a = seal(make_entry(), seq=1, ts=utc, prev_hash=GENESIS_HASH, algorithm="sha256")
    b = seal(make_entry(), seq=1, ts=shanghai, prev_hash=GENESIS_HASH, algorithm="sha256")
    assert a == b
    assert a.ts.tzinfo == UTC


def test_entry_rejects_malformed_values() -> None:
    with pytest.raises(ValueError, match="outcome"):
        dataclasses.replace(make_entry(), outcome="maybe")
    with pytest.raises(ValueError, match="classification"):
        dataclasses.replace(make_entry(), classification=5)
    with pytest.raises(TypeError, match="coordinates"):
        dataclasses.replace(make_entry(), coordinates="Query.x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hex"):
        dataclasses.replace(make_entry(), document_hash="not-hex")
    with pytest.raises(ValueError, match="timezone-aware"):
        seal(make_entry(), seq=1, ts=datetime(2026, 1, 1), prev_hash=GENESIS_HASH, algorithm="sha256")


def test_entry_copies_record_keys() -> None:
    keys = {"CreditRecord": ("k1",)}
    entry = dataclasses.replace(make_entry(), record_keys=keys)
    keys["CreditRecord"] = ("changed",)
    assert entry.record_keys["CreditRecord"] == ("k1",)


# -- chaining and verification -----------------------------------------------------------------------


async def test_chain_of_appends_verifies(trail: AuditTrail) -> None:
    appended = await fill(trail, 25)

    assert [r.seq for r in appended] == list(range(1, 26))
    assert appended[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(appended))
    assert all(r.algorithm == default_algorithm() for r in appended)
    assert all(r.ts.tzinfo == UTC for r in appended)

    report = await trail.verify(chunk_size=4)  # several chunks, and one partial
    assert report.ok, report.reason
    assert (report.checked, report.first_broken_seq) == (25, None)
    assert appended[-1].hash in report.reason  # the head, for anchoring elsewhere

    # What a read returns is exactly what append returned.
    assert await trail.records() == appended
    assert await trail.records(after_seq=20, limit=3) == appended[20:23]


async def test_empty_trail_verifies(trail: AuditTrail) -> None:
    report = await trail.verify()
    assert (report.ok, report.checked, report.first_broken_seq) == (True, 0, None)


async def test_rows_keep_their_own_algorithm(store: Store, trail: AuditTrail) -> None:
    await fill(trail, 3)
    other = "sha256" if trail.algorithm != "sha256" else "sm3"
    second = AuditTrail(store.url, algorithm=other)
    try:
        record = await second.append(make_entry(9))
    finally:
        await second.aclose()
    assert (record.seq, record.algorithm) == (4, other)
    report = await trail.verify()
    assert report.ok, report.reason
    assert report.checked == 4


async def test_edited_field_is_reported_at_that_seq(store: Store, trail: AuditTrail) -> None:
    await fill(trail, 10)
    await store.tamper("UPDATE audit_log SET subject = 'someone-else' WHERE seq = 5")

    report = await trail.verify(chunk_size=3)
    assert not report.ok
    assert (report.first_broken_seq, report.checked) == (5, 4)
    assert "altered" in report.reason


async def test_edited_json_column_is_reported(store: Store, trail: AuditTrail) -> None:
    await fill(trail, 4)
    await store.tamper("""UPDATE audit_log SET record_keys = '{"CreditRecord": []}' WHERE seq = 2""")
    report = await trail.verify()
    assert (report.ok, report.first_broken_seq) == (False, 2)


async def test_edited_row_with_recomputed_hash_is_caught_at_the_next_link(store: Store, trail: AuditTrail) -> None:
    await fill(trail, 10)
    (original,) = await trail.records(after_seq=4, limit=1)
    forged = dataclasses.replace(original.entry, subject="someone-else")
    canonical = canonical_bytes(
        forged, seq=original.seq, ts=original.ts, prev_hash=original.prev_hash, algorithm=original.algorithm
    )
    await store.tamper(
        "UPDATE audit_log SET subject = ?, hash = ? WHERE seq = 5",
        "someone-else",
        chain_hash(original.prev_hash, canonical, original.algorithm),
    )

    report = await trail.verify()
    assert not report.ok
    # Row 5 is self-consistent now; the break shows where row 6 still points at the old hash.
    assert (report.first_broken_seq, report.checked) == (6, 5)
    assert "prev_hash is not the hash of seq 5" in report.reason


async def test_downgraded_algorithm_is_reported(store: Store, trail: AuditTrail) -> None:
    await fill(trail, 3)
    await store.tamper("UPDATE audit_log SET algorithm = 'md5' WHERE seq = 3")
    report = await trail.verify()
    assert (report.ok, report.first_broken_seq) == (False, 3)
    assert "md5" in report.reason


@pytest.mark.parametrize(
    ("where", "first_broken", "phrase"),
    [
        ("seq = 5", 5, "seq 5 is missing (next row present is seq 6)"),
        ("seq BETWEEN 4 AND 6", 4, "seqs 4..6 are missing (next row present is seq 7)"),
        ("seq = 1", 1, "seq 1 is missing (next row present is seq 2)"),
    ],
)
async def test_deleted_rows_are_reported_at_the_first_missing_seq(
    store: Store, trail: AuditTrail, where: str, first_broken: int, phrase: str
) -> None:
    await fill(trail, 10)
    await store.tamper(f"DELETE FROM audit_log WHERE {where}")

    report = await trail.verify(chunk_size=4)
    assert not report.ok
    assert (report.first_broken_seq, report.checked) == (first_broken, first_broken - 1)
    assert phrase in report.reason


async def test_stray_row_before_seq_1_is_reported(store: Store, trail: AuditTrail) -> None:
    await fill(trail, 2)
    await store.tamper(
        "INSERT INTO audit_log SELECT 0, ts, request_id, subject, department, purpose, case_ref, "
        "operation_name, document_hash, coordinates, record_keys, policy_revision, outcome, "
        "classification, prev_hash, 'f' || hash, algorithm FROM audit_log WHERE seq = 1",
    )
    report = await trail.verify()
    assert (report.ok, report.first_broken_seq) == (False, 0)


async def test_truncated_tail_is_not_detectable_from_the_chain_alone(store: Store, trail: AuditTrail) -> None:
    # Honest limit: rows 1..9 of a 10-row chain are still a valid chain. Deleting the newest rows
    # is only detectable against an anchor kept outside this database (e.g. the head seq and hash
    # published periodically to write-once storage). verify's OK line names the head for that.
    await fill(trail, 10)
    anchored = await trail.verify()
    await store.tamper("DELETE FROM audit_log WHERE seq = 10")

    report = await trail.verify()
    assert report.ok
    assert (report.checked, report.first_broken_seq) == (9, None)
    # What does change is the head it reports, which is what an external anchor would compare.
    assert report.reason != anchored.reason
    assert "head seq 9" in report.reason


async def test_search_matches_record_keys_exactly(trail: AuditTrail) -> None:
    """A record key matches as a whole JSON string and case-sensitively on every backend
    (SQLite's LIKE would ignore ASCII case); LIKE's wildcards are plain characters."""
    keys = ["91330203MA2AAAAA1X", "91330203ma2aaaaa1x", "k_%"]
    for n, key in enumerate(keys):
        await trail.append(dataclasses.replace(make_entry(n), record_keys={"Enterprise": (key,)}))

    async def seqs(**criteria: Any) -> list[int]:
        return [r.seq for r in await trail.search(AuditQuery(**criteria))]

    assert await seqs(record_key="91330203MA2AAAAA1X") == [1]
    assert await seqs(record_key="91330203ma2aaaaa1x") == [2]
    assert await seqs(record_key="k_%") == [3]
    assert await seqs(record_key="k") == []  # part of a key is not the key
    assert await seqs(record_key="%") == []
    assert await seqs(subject="officer-7", case_ref="CASE-1") == [2]
    assert await seqs() == [3, 2, 1]  # newest first


# -- concurrency -------------------------------------------------------------------------------------


async def test_concurrent_tasks_keep_one_chain(trail: AuditTrail) -> None:
    records = await asyncio.gather(*(trail.append(make_entry(n)) for n in range(100)))

    assert sorted(r.seq for r in records) == list(range(1, 101))
    report = await trail.verify(chunk_size=17)
    assert report.ok, report.reason
    assert report.checked == 100


_REFUSE_SQLITE = (
    "CREATE TRIGGER refuse BEFORE INSERT ON audit_log WHEN NEW.request_id = 'refused' "
    "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
)
_REFUSE_PG = (
    "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
    "IF NEW.request_id = 'refused' THEN RAISE EXCEPTION 'refused by a trigger'; END IF; RETURN NEW; END "
    "$$ LANGUAGE plpgsql; "
    "CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()"
)


async def test_a_row_the_database_refuses_fails_only_its_own_append(
    store: Store, trail: AuditTrail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three appends in one batch: its insert fails, the batch is rolled back whole and written
    # again entry by entry, so only the refused entry's request fails closed.
    await store.tamper(_REFUSE_SQLITE if store.sqlite_path is not None else _REFUSE_PG)
    batches: list[list[str]] = []
    write = trail._write

    async def counted(entries: list[AuditEntry]) -> list[AuditRecord]:
        batches.append([e.request_id for e in entries])
        return await write(entries)

    monkeypatch.setattr(trail, "_write", counted)
    entries = [make_entry(1), make_entry(2, request_id="refused"), make_entry(3)]
    results = await asyncio.gather(*(trail.append(e) for e in entries), return_exceptions=True)
    assert batches == [["req-1", "refused", "req-3"], ["req-1"], ["refused"], ["req-3"]]
    assert isinstance(results[1], AuditWriteError) and "refused by a trigger" in str(results[1])
    written = [r for r in results if isinstance(r, AuditRecord)]
    assert [(r.seq, r.entry.request_id) for r in written] == [(1, "req-1"), (2, "req-3")]
    report = await trail.verify()
    assert report.ok and report.checked == 2, report.reason
    later = await trail.append(make_entry(4))  # the chain goes on after the refused batch
    assert later.seq == 3 and later.prev_hash == written[-1].hash
    assert (await trail.records())[-1] == later


async def test_sqlite_appends_keep_a_clean_connection_and_return_a_failed_one(tmp_path: Path) -> None:
    """Batches that commit run on one connection, checked out once; a batch that fails gives its
    connection back to the pool (which rolls it back), and closing the trail closes the held one."""
    trail = AuditTrail(f"sqlite+aiosqlite:///{tmp_path / 'held.sqlite'}")
    await trail.open()
    assert trail._appender is not None
    moves: list[str] = []
    event.listen(trail._appender, "checkout", lambda *_: moves.append("out"))
    event.listen(trail._appender, "checkin", lambda *_: moves.append("in"))
    for n in range(3):
        await trail.append(make_entry(n))
    assert moves == ["out"]  # held between batches
    with closing(sqlite3.connect(tmp_path / "held.sqlite")) as other:
        other.execute(_REFUSE_SQLITE)
        other.commit()
    with pytest.raises(AuditWriteError, match="refused by a trigger"):
        await trail.append(make_entry(3, request_id="refused"))
    assert moves == ["out", "in"]  # the failed batch's connection went back to the pool
    await trail.append(make_entry(4))
    assert moves == ["out", "in", "out"]
    report = await trail.verify()
    assert report.ok and report.checked == 4, report.reason
    await trail.aclose()
    assert moves == ["out", "in", "out", "in"] and trail._held is None
    # A write that finishes after the close (its drain was cancelled) does not keep its connection.
    late = trail._appender.raw_connection()
    trail._give_back(late, keep=True)
    assert moves[-2:] == ["out", "in"] and trail._held is None
    await trail.open()  # reopened: a clean connection is kept again, but only one
    first, second = trail._appender.raw_connection(), trail._appender.raw_connection()
    trail._give_back(first, keep=True)
    trail._give_back(second, keep=True)
    assert trail._held is first and moves[-1] == "in"
    await trail.aclose()
    assert trail._held is None and moves.count("out") == moves.count("in")


def _append_from_process(url: str, tag: str, count: int, barrier: Any) -> None:
    """Child process body: wait for the sibling, then append ``count`` records."""

    async def run() -> None:
        trail = AuditTrail(url)
        try:
            await trail.open()
            barrier.wait(30)  # both processes start appending at the same moment
            for n in range(count):
                await trail.append(make_entry(n, request_id=f"{tag}-{n}"))
        finally:
            await trail.aclose()

    asyncio.run(run())


async def test_two_processes_keep_one_chain(store: Store) -> None:
    url = store.url
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    processes = [ctx.Process(target=_append_from_process, args=(url, tag, 50, barrier)) for tag in ("proc-a", "proc-b")]
    for process in processes:
        process.start()
    for process in processes:
        await asyncio.to_thread(process.join, 120)
    assert [p.exitcode for p in processes] == [0, 0]

    trail = AuditTrail(url)
    try:
        report = await trail.verify(chunk_size=30)
        records = await trail.records(limit=1000)
    finally:
        await trail.aclose()
    assert report.ok, report.reason
    assert report.checked == 100
    assert [r.seq for r in records] == list(range(1, 101))
    tags = [r.entry.request_id.rsplit("-", 1)[0] for r in records]
    assert tags.count("proc-a") == tags.count("proc-b") == 50


# -- failure -----------------------------------------------------------------------------------------


async def test_missing_directory_is_unwritable(tmp_path: Path) -> None:
    trail = AuditTrail(url_for(tmp_path / "no" / "such" / "dir" / "audit.sqlite"))
    try:
        assert await trail.writable() is False
        with pytest.raises(AuditWriteError):
            await trail.open()
        with pytest.raises(AuditWriteError):
            await trail.append(make_entry())
    finally:
        await trail.aclose()
    assert not (tmp_path / "no").exists()


async def test_read_only_database_is_unwritable_but_verifiable(db_path: Path) -> None:
    async with AuditTrail(url_for(db_path)) as trail:
        await fill(trail, 3)
    read_only = AuditTrail(f"sqlite+aiosqlite:///file:{db_path}?mode=ro&uri=true")
    try:
        await read_only.open()  # the table exists, so opening writes nothing
        assert await read_only.writable() is False
        with pytest.raises(AuditWriteError, match="readonly"):
            await read_only.append(make_entry(99))
        assert (await read_only.verify()).checked == 3
    finally:
        await read_only.aclose()
    async with AuditTrail(url_for(db_path)) as trail:
        assert len(await trail.records()) == 3


@contextmanager
def read_only_files(directory: Path) -> Iterator[None]:
    modes = {path: path.stat().st_mode for path in [directory, *directory.iterdir()]}
    try:
        for path in modes:
            path.chmod(stat.S_IRUSR | stat.S_IXUSR if path.is_dir() else stat.S_IRUSR)
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def permissions_enforced(directory: Path) -> bool:
    """False when running with CAP_DAC_OVERRIDE (e.g. as root), which writes through a chmod."""
    probe = directory / "probe"
    probe.write_bytes(b"")
    probe.chmod(stat.S_IRUSR)
    try:
        with probe.open("ab"):
            return False
    except PermissionError:
        return True
    finally:
        probe.chmod(stat.S_IRUSR | stat.S_IWUSR)
        probe.unlink()


async def test_chmod_read_only_file_is_unwritable(db_path: Path) -> None:
    if not permissions_enforced(db_path.parent):
        pytest.skip("file permissions are not enforced for this user (root); see the mode=ro test")
    setup = AuditTrail(url_for(db_path))
    try:
        await setup.open()
        await fill(setup, 2)
    finally:
        await setup.aclose()
    trail = AuditTrail(url_for(db_path))
    try:
        with read_only_files(db_path.parent):
            assert await trail.writable() is False
            with pytest.raises(AuditWriteError):
                await trail.append(make_entry())
    finally:
        await trail.aclose()


async def test_writable_does_not_append(trail: AuditTrail) -> None:
    await fill(trail, 2)
    assert await trail.writable() is True
    assert [r.seq for r in await trail.records()] == [1, 2]


async def test_unopened_trail_without_table_fails_closed(store: Store) -> None:
    trail = AuditTrail(store.url)
    try:
        assert await trail.writable() is False
        with pytest.raises(AuditWriteError, match=r'no such table|relation "audit_log" does not exist'):
            await trail.append(make_entry())
    finally:
        await trail.aclose()


async def test_context_manager_opens_and_closes(store: Store) -> None:
    async with AuditTrail(store.url) as trail:
        await trail.append(make_entry())
        assert (await trail.verify()).checked == 1


# -- cli ---------------------------------------------------------------------------------------------


def test_verify_command_exit_codes(db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def setup() -> None:
        async with AuditTrail(url_for(db_path)) as trail:
            await fill(trail, 3)

    asyncio.run(setup())

    assert verify_command(url_for(db_path)) == 0
    assert "OK 3 records" in capsys.readouterr().out

    raw_sql(db_path, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 2")
    assert verify_command(url_for(db_path)) == 1
    out = capsys.readouterr().out
    assert "BROKEN at seq 2" in out
    assert "altered" in out

    missing = tmp_path / "elsewhere.sqlite"
    assert verify_command(url_for(missing)) == 1
    assert "no audit database" in capsys.readouterr().err
    assert not missing.exists()  # verifying never creates an empty, "intact" trail

    raw_sql(tmp_path / "other.sqlite", "CREATE TABLE unrelated (x INTEGER)")
    assert verify_command(url_for(tmp_path / "other.sqlite")) == 1
    assert "no such table" in capsys.readouterr().err
