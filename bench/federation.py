"""Dossier latency through federation routers beside the combined gateway (a script, not a test).

Starts, on 127.0.0.1 only, every subgraph as its own ``citygraph serve --subgraph NAME`` process,
the combined gateway (``citygraph serve``), Apollo Gateway (``tests/federation/node/gateway.mjs``,
IntrospectAndCompose) and Hive Gateway (``bench/federation``: ``hive-gateway supergraph`` over the
supergraph ``@apollo/composition`` builds), all over the same demo data. Each answers the enterprise
dossier query (registration, legal representative, licences, credit records, location) for the
same principal; their data must be equal before anything is measured. Then requests are sent one
at a time (concurrency 1: latency, not throughput) and p50/p99 are printed as a Markdown table.
Every process is stopped at the end, also on failure.

    python bench/federation.py [--requests 300] [--scale 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.identity import mint_dev_token  # noqa: E402
from edge.settings import AuthSettings  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.federation.node import compose, node_process, node_tools, stop  # noqa: E402

HIVE = ROOT / "bench" / "federation"
SECRET = "bench-secret-not-for-production-0123456789"
SUBGRAPHS = ("credit", "license", "spatial", "gateway")
DOSSIER = """query Dossier($u: USCC!) { enterprise(uscc: $u) {
  uscc name address districtCode industry establishedOn status registeredCapital
  legalRepresentative { idNumber name phone }
  licenses { number type issuer validUntil status }
  credit { rating records { kind title decisionNumber } }
  location { geometry district { adcode name } } } }"""


def citygraph_env(data: Path, audit: str) -> dict[str, str]:
    return {
        **os.environ,
        "CITYGRAPH_DATA_DIR": str(data),
        "CITYGRAPH_AUTH__SECRET": SECRET,
        "CITYGRAPH_AUDIT__URL": f"sqlite+aiosqlite:///{data / audit}",
        "CITYGRAPH_DEV": "false",
    }


@contextlib.contextmanager
def citygraph(data: Path, servers: dict[str, str | None]) -> Iterator[dict[str, str]]:
    """``citygraph serve`` processes (name -> subgraph or None), started together; yields /graphql URLs."""
    procs: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        for name, subgraph in servers.items():
            port = free_port()
            command = [str(ROOT / ".venv" / "bin" / "citygraph"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            if subgraph:
                command += ["--subgraph", subgraph]
            env = citygraph_env(data, f"audit-{subgraph or 'combined'}.sqlite")
            procs[name] = (
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    text=True,
                ),
                port,
            )
        deadline = time.monotonic() + 300
        for name, (proc, port) in procs.items():
            while not _healthy(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"citygraph serve ({name}) did not start")
                time.sleep(0.2)
        yield {name: f"http://127.0.0.1:{port}/graphql" for name, (_, port) in procs.items()}
    finally:
        for proc, _ in procs.values():
            stop(proc)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def post(client: httpx.Client, url: str, bearer: str, uscc: str) -> dict[str, object]:
    response = client.post(
        url, json={"query": DOSSIER, "variables": {"u": uscc}}, headers={"Authorization": f"Bearer {bearer}"}
    )
    body: dict[str, object] = response.json()
    return body


def measure(url: str, bearer: str, usccs: list[str], requests: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``requests`` dossiers, one at a time, after a warm-up."""
    timings = []
    with httpx.Client(timeout=30) as client:
        for i in range(requests + 30):
            start = time.perf_counter()
            post(client, url, bearer, usccs[i % len(usccs)])
            if i >= 30:
                timings.append((time.perf_counter() - start) * 1000)
    cuts = statistics.quantiles(timings, n=100)
    return statistics.median(timings), cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--scale", type=int, default=2000)
    args = parser.parse_args()
    node_tools()
    if not (HIVE / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(HIVE)], check=True)
    with tempfile.TemporaryDirectory(prefix="citygraph-fed-") as tmp, contextlib.ExitStack() as stack:
        data = Path(tmp)
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "citygraph"), "demo-data", "--scale", str(args.scale)],
            cwd=ROOT,
            env=citygraph_env(data, "audit.sqlite"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with sqlite3.connect(data / "license.sqlite") as conn:
            usccs = [r[0] for r in conn.execute("SELECT uscc FROM enterprises ORDER BY uscc LIMIT 50")]
        bearer = mint_dev_token(
            SECRET,
            AuthSettings(),
            subject="bench",
            department="market_supervision",
            roles=["staff"],
            districts=[],
            clearance=3,
            ttl_s=3600,
        )
        started = stack.enter_context(citygraph(data, {**{n: n for n in SUBGRAPHS}, "combined gateway": None}))
        urls = {name: started[name] for name in SUBGRAPHS}
        servers = {"combined gateway": started["combined gateway"]}
        apollo = free_port()
        routes = [f"{name}={url}" for name, url in urls.items()]
        stack.enter_context(node_process(["node", "gateway.mjs", "--port", str(apollo), *routes], ready="ready"))
        servers["Apollo Gateway 2.14"] = f"http://127.0.0.1:{apollo}/"
        sdl = {
            n: httpx.post(u, json={"query": "{ _service { sdl } }"}).json()["data"]["_service"]["sdl"]
            for n, u in urls.items()
        }
        composed = compose([{"name": n, "url": urls[n], "sdl": s} for n, s in sdl.items()])
        (data / "supergraph.graphql").write_text(str(composed["supergraphSdl"]), encoding="utf-8")
        hive = free_port()
        hive_bin = str(HIVE / "node_modules" / ".bin" / "hive-gateway")
        stack.enter_context(
            node_process(
                [hive_bin, "supergraph", str(data / "supergraph.graphql"), "--host", "127.0.0.1", "--port", str(hive)],
                ready="Listening on",
                timeout=240,
                cwd=HIVE,
            )
        )
        servers["Hive Gateway 2.15"] = f"http://127.0.0.1:{hive}/graphql"
        with httpx.Client(timeout=30) as client:
            reference = post(client, servers["combined gateway"], bearer, usccs[0])
            for name, url in servers.items():
                if post(client, url, bearer, usccs[0]).get("data") != reference.get("data"):
                    raise SystemExit(f"{name} answers the dossier differently from the combined gateway")
        print(
            f"dossier query, market supervision principal, {args.requests} requests one at a time, "
            f"{args.scale} enterprises, SQLite"
        )
        print("| server | p50 ms | p99 ms |\n|---|---:|---:|")
        for name, url in servers.items():
            p50, p99 = measure(url, bearer, usccs, args.requests)
            print(f"| {name} | {p50:.1f} | {p99:.1f} |", flush=True)


if __name__ == "__main__":
    main()
