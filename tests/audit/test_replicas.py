"""One PostgreSQL trail, several writer processes: one chain, nothing lost, stuck writers bounded.

The processes here are real OS processes appending through ``AuditTrail`` as gateway replicas
do, each with several appends in flight (so group commits from different processes interleave).
``tests/e2e/test_replicas.py`` does the same through real gateway servers and the CLI.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from audit import AuditTrail, AuditWriteError
from audit.trail import PG_LOCK_KEY
from connectors.demo_pg import dsn
from tests.audit.test_trail import make_entry
from tests.audit.writers import replica
from tests.postgres import PgServer, throwaway_database

PROCESSES = 4
TASKS = 6  # appends in flight per process
PER_TASK = 20


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    # REPEATABLE READ by default, as in test_trail: appends must read the head under READ COMMITTED.
    with throwaway_database(pg_server, "replicas", default_transaction_isolation="repeatable read") as url:
        yield url


async def test_writer_processes_keep_one_chain(pg_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    names = [f"replica{p}" for p in range(PROCESSES)]
    processes = [ctx.Process(target=replica, args=(pg_url, name, TASKS, PER_TASK, barrier)) for name in names]
    try:
        for process in processes:
            process.start()
        for process in processes:
            await asyncio.to_thread(process.join, 180)
        assert [p.exitcode for p in processes] == [0] * PROCESSES
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(10)

    async with AuditTrail(pg_url) as trail:
        report = await trail.verify(chunk_size=97)
        records = await trail.records(limit=10_000)
    total = PROCESSES * TASKS * PER_TASK
    assert report.ok, report.reason
    assert report.checked == total
    assert [r.seq for r in records] == list(range(1, total + 1))
    expected = {f"{name}-{task}-{n}" for name in names for task in range(TASKS) for n in range(PER_TASK)}
    assert {r.entry.request_id for r in records} == expected  # every acknowledged append, once
    # The writers really interleaved: the chain switches process many times, not once per process.
    owners = [r.entry.request_id.split("-")[0] for r in records]
    assert sum(a != b for a, b in itertools.pairwise(owners)) > PROCESSES


async def test_concurrent_appends_share_transactions(pg_url: str) -> None:
    async with AuditTrail(pg_url) as trail:
        records = await asyncio.gather(*(trail.append(make_entry(n, request_id=f"r{n}")) for n in range(50)))
        report = await trail.verify()
    # gather's order is the queue's order, so the chain runs in the order the appends were made.
    assert [r.entry.request_id for r in records] == [f"r{n}" for n in range(50)]
    assert [r.seq for r in records] == list(range(1, 51)) and report.ok and report.checked == 50


async def test_a_refused_row_fails_only_its_own_append(pg_url: str) -> None:
    # PostgreSQL text cannot hold NUL: this entry's insert fails, its batch neighbours' must not.
    bad = make_entry(5, request_id="bad\x00id")
    async with AuditTrail(pg_url) as trail:
        entries = [make_entry(n, request_id=f"ok-{n}") for n in range(10)]
        results = await asyncio.gather(
            *(trail.append(e) for e in [*entries[:5], bad, *entries[5:]]), return_exceptions=True
        )
        report = await trail.verify()
        stored = await trail.records()
    assert isinstance(results[5], AuditWriteError)
    assert not any(isinstance(r, BaseException) for i, r in enumerate(results) if i != 5)
    assert report.ok and report.checked == 10
    assert [r.entry.request_id for r in stored] == [f"ok-{n}" for n in range(10)]


async def test_a_busy_lock_holder_makes_appends_fail_closed_not_hang(pg_url: str) -> None:
    async with AuditTrail(pg_url, lock_timeout_s=0.5) as trail:
        await trail.append(make_entry(1))
        holder = await asyncpg.connect(dsn(pg_url))  # another process, holding the write lock
        try:
            async with holder.transaction():
                await holder.execute("SELECT pg_advisory_xact_lock($1)", PG_LOCK_KEY)
                started = time.monotonic()
                with pytest.raises(AuditWriteError, match="lock timeout"):
                    await trail.append(make_entry(2))
                assert time.monotonic() - started < 5
        finally:
            await holder.close()
        await trail.append(make_entry(3))  # the lock is free again: appends resume
        report = await trail.verify()
    assert report.ok and report.checked == 2


async def test_a_stalled_writer_is_ended_and_appends_go_on(pg_url: str) -> None:
    stalled = AuditTrail(pg_url, idle_timeout_s=0.5)
    other = AuditTrail(pg_url, lock_timeout_s=10)
    try:
        await other.open()
        with pytest.raises(DBAPIError, match="connection is closed"):
            # A replica that froze between statements while holding the write lock: its commit,
            # when it wakes, fails, because the server has ended its session and rolled back.
            async with stalled._write_transaction():
                started = time.monotonic()
                record = await asyncio.wait_for(other.append(make_entry(1)), 10)
                waited = time.monotonic() - started
        assert record.seq == 1 and 0.3 < waited < 5  # freed by the holder's idle timeout
        report = await other.verify()
        assert report.ok and report.checked == 1
    finally:
        await stalled.aclose()
        await other.aclose()


async def test_replicas_starting_together_create_the_table_once(pg_url: str) -> None:
    trails = [AuditTrail(pg_url) for _ in range(4)]
    try:
        await asyncio.gather(*(t.open() for t in trails))
        await asyncio.gather(*(t.append(make_entry(n)) for n, t in enumerate(trails)))
        report = await trails[0].verify()
    finally:
        for t in trails:
            await t.aclose()
    assert report.ok and report.checked == 4
