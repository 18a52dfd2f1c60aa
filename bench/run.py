"""The benchmark (a script, not a test): serve the gateway on the large demo data set and measure.

For each reference query it reports requests per second and p50/p99 latency at a fixed
concurrency, server CPU per request (from /proc), and SQL statements per request (from the
gateway's own /metrics counter). The server is pinned to one core and the load generator to the
other, so they do not steal each other's CPU. Results go to bench/results/ and bench/RESULTS.md.

    python bench/run.py [--scale 100000] [--seconds 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-not-for-production-0123456789"

DOSSIER = """query Dossier($u: USCC!) { enterprise(uscc: $u) { uscc name address districtCode industry status
  legalRepresentative { name idNumber } licenses { number type status validUntil }
  credit { rating score assessedAt records { id kind title authority decisionDate publicityEndsOn amount } } } }"""
PAGE_100 = """query Page($after: String) { enterprises(first: 100, after: $after) { nodes { uscc name status
  legalRepresentative { name } licenses { type status } credit { rating records { kind title decisionDate } } }
  pageInfo { endCursor } } }"""
DISTRICT_500 = """query District($after: String) { creditRecords(first: 500, after: $after) {
  nodes { id kind title authority decisionDate districtCode amount legalRepIdNumber } pageInfo { endCursor } } }"""


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    statements_per_request: float


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _statements(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(float(m) for m in re.findall(r"^citygraph_backend_statements_total\{[^}]*\} (\S+)$", text, re.M))


async def _load(
    url: str, headers: dict[str, str], bodies: Sequence[Mapping[str, object]], seconds: float, concurrency: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    rng = random.Random(1)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                start = time.perf_counter()
                response = await client.post("/graphql", json=rng.choice(bodies))
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200 or "errors" in response.json():
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def _pages(url: str, headers: dict[str, str], query: str, field: str, count: int) -> list[dict[str, object]]:
    """Request bodies for the first ``count`` pages of a connection, following its cursors."""
    cursors: list[str | None] = [None]
    for _ in range(count - 1):
        body = {"query": query, "variables": {"after": cursors[-1]}}
        page = httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=60).json()
        cursors.append(page["data"][field]["pageInfo"]["endCursor"])
    return [{"query": query, "variables": {"after": c}} for c in cursors]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    data_dir = ROOT / "var" / f"bench-{args.scale}"
    if not (data_dir / "license.sqlite").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "demo-data",
                "--scale",
                str(args.scale),
                "--out",
                str(data_dir),
            ],
            check=True,
            cwd=ROOT,
        )
    with sqlite3.connect(data_dir / "credit.sqlite") as conn:
        usccs = [
            r[0] for r in conn.execute("SELECT uscc FROM credit_records GROUP BY uscc ORDER BY random() LIMIT 2000")
        ]
    env = {
        **os.environ,
        "CITYGRAPH_DATA_DIR": str(data_dir),
        "CITYGRAPH_DEV": "false",
        "CITYGRAPH_AUTH__SECRET": SECRET,
    }
    cores = sorted(os.sched_getaffinity(0))
    server_cmd = [sys.executable, "-m", "gateway", "serve", "--port", str(args.port)]
    if len(cores) > 1:
        server_cmd = ["taskset", "-c", str(cores[0]), *server_cmd]
        os.sched_setaffinity(0, set(cores[1:]))
    server = subprocess.Popen(server_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("server did not become ready")
        sys.path.insert(0, str(ROOT))
        from edge.identity import mint_dev_token
        from edge.settings import AuthSettings

        def bearer(**claims: Any) -> dict[str, str]:
            token = mint_dev_token(SECRET, AuthSettings(), subject="bench", ttl_s=3600, **claims)
            return {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "market_supervision"}

        staff = bearer(department="market_supervision", roles=["staff"], districts=[], clearance=2)
        officer = bearer(department="market_supervision", roles=["district_officer"], districts=["330203"], clearance=2)
        workloads: dict[str, tuple[dict[str, str], list[dict[str, object]]]] = {
            "enterprise dossier (registration, legal rep, licences, credit)": (
                staff,
                [{"query": DOSSIER, "variables": {"u": u}} for u in usccs],
            ),
            "page of 100 enterprises with licences and credit records": (
                staff,
                _pages(url, staff, PAGE_100, "enterprises", 20),
            ),
            "district officer: 500 credit records of own district": (
                officer,
                _pages(url, officer, DISTRICT_500, "creditRecords", 10),
            ),
        }
        results = []
        for name, (headers, bodies) in workloads.items():
            asyncio.run(_load(url, headers, bodies, 2.0, args.concurrency))  # warm up
            cpu0, st0 = _cpu_seconds(server.pid), _statements(url)
            start = time.monotonic()
            latencies, errors = asyncio.run(_load(url, headers, bodies, args.seconds, args.concurrency))
            elapsed = time.monotonic() - start
            cpu1, st1 = _cpu_seconds(server.pid), _statements(url)
            n = len(latencies)
            results.append(
                Result(
                    name,
                    args.concurrency,
                    n,
                    errors,
                    n / elapsed,
                    _pct(latencies, 0.5),
                    _pct(latencies, 0.99),
                    (cpu1 - cpu0) * 1000 / n,
                    (st1 - st0) / n,
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        f"# Benchmark results\n\nScale: {args.scale} enterprises; {args.seconds:.0f} s per query at concurrency "
        f"{args.concurrency}; server pinned to one core; machine: {machine}. Policy, masking and audit on.\n",
        "| query | req/s | p50 ms | p99 ms | server CPU ms/req | SQL statements/req | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.cpu_ms_per_request:.2f} "
            f"| {r.statements_per_request:.2f} | {r.errors} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    (ROOT / "bench" / "RESULTS.md").write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
