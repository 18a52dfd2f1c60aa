"""Audit append throughput with N writer processes on one PostgreSQL trail (a script, not a test).

Each writer process stands for a gateway replica: it opens its own ``AuditTrail`` and runs
``--tasks`` concurrent appenders (requests in flight) for ``--seconds``, all processes starting
together. The run reports committed appends per second across all processes, append latency
percentiles, and then verifies the chain, which must be intact and hold exactly the appends the
writers saw acknowledged (appends that failed closed are counted, not stored). It creates a
throw-away database on the server and drops it afterwards.

    python bench/audit_replicas.py [--server postgresql://postgres@127.0.0.1:5432]
                                   [--processes 1,2,4] [--tasks 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import statistics
import time
from typing import Any

import asyncpg

from audit import AuditEntry, AuditTrail, AuditWriteError


def entry(process: int, n: int) -> AuditEntry:
    """A record the size of a typical dossier read."""
    return AuditEntry(
        request_id=f"p{process}-{n}",
        subject="officer-7",
        department="market_supervision",
        purpose="inspection",
        case_ref="CASE-2026-001",
        operation_name="Dossier",
        document_hash="ab" * 32,
        coordinates=("Query.enterprise", "Enterprise.name", "Enterprise.creditRecords", "CreditRecord.title"),
        record_keys={"Enterprise": ("91330203MA2AAAAA1X",), "CreditRecord": tuple(f"r{k}" for k in range(10))},
        policy_revision="bench",
        outcome="ok",
        classification=2,
    )


def writer(url: str, process: int, tasks: int, seconds: float, barrier: Any, results: Any) -> None:
    """One replica: ``tasks`` appenders until the deadline; puts (count, failed, latencies) on ``results``."""

    async def run() -> tuple[int, int, list[float]]:
        latencies: list[float] = []
        failed = 0
        counter = iter(range(1 << 62))
        async with AuditTrail(url) as trail:
            await asyncio.to_thread(barrier.wait, 60)
            deadline = time.monotonic() + seconds

            async def appender() -> None:
                nonlocal failed
                while time.monotonic() < deadline:
                    start = time.perf_counter()
                    try:
                        await trail.append(entry(process, next(counter)))
                    except AuditWriteError:
                        failed += 1  # failed closed (lock or idle timeout on a starved machine)
                        continue
                    latencies.append(time.perf_counter() - start)

            await asyncio.gather(*(appender() for _ in range(tasks)))
        return len(latencies), failed, latencies

    results.put(asyncio.run(run()))


async def admin(server: str, statement: str) -> None:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def truncate(url: str) -> None:
    """Empty the trail (created by the first ``open``), so each measurement starts at seq 1."""
    async with AuditTrail(url):
        pass
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute("TRUNCATE audit_log")
    finally:
        await conn.close()


async def verify(url: str) -> tuple[bool, int]:
    async with AuditTrail(url) as trail:
        report = await trail.verify()
    return report.ok, report.checked


def measure(url: str, processes: int, tasks: int, seconds: float) -> dict[str, float]:
    asyncio.run(truncate(url))
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=writer, args=(url, p, tasks, seconds, barrier, results)) for p in range(processes)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join(30)
        if worker.exitcode != 0:
            raise SystemExit(f"writer exited with {worker.exitcode}")
    appended = sum(count for count, _, _ in outcomes)
    failed = sum(count for _, count, _ in outcomes)
    latencies = sorted(x for _, _, values in outcomes for x in values)
    ok, checked = asyncio.run(verify(url))
    if not ok or checked != appended:
        raise SystemExit(f"chain check failed: ok={ok}, {checked} rows for {appended} acknowledged appends")
    return {
        "processes": processes,
        "appends_per_s": appended / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "rows": checked,
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("CITYGRAPH_TEST_PG", "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--tasks", type=int, default=8, help="concurrent appends per process")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    server = args.server.rstrip("/")
    name = f"citygraph_bench_{secrets.token_hex(4)}_audit"
    asyncio.run(admin(server, f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"))
    url = server.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    try:
        header = ("processes", 9), ("tasks", 5), ("appends/s", 10), ("p50 ms", 7), ("p99 ms", 7), ("rows", 7)
        print(" ".join(f"{name:>{width}}" for name, width in header), "failed  chain")
        for count in (int(p) for p in args.processes.split(",")):
            row = measure(url, count, args.tasks, args.seconds)
            print(
                f"{count:>9} {args.tasks:>5} {row['appends_per_s']:>10.0f} {row['p50_ms']:>7.1f} "
                f"{row['p99_ms']:>7.1f} {row['rows']:>7.0f} {row['failed']:>6.0f}  intact"
            )
    finally:
        asyncio.run(admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
