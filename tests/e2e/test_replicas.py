"""Replicas: several ``citygraph serve`` processes behind one address share one PostgreSQL audit trail.

Each replica is a real process started by the real CLI, reading the same configuration file
and policy folder (shared locations) and the same connector databases. Authenticated requests
with real JWTs go to all of them at once; afterwards ``citygraph audit verify`` must find one
intact chain holding exactly one record per request, and must find it broken once a row is edited.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SECRET, TokenFactory, free_port
from tests.postgres import PgDemo, PgServer, execute, throwaway_database

REPLICAS = 3
REQUESTS_PER_REPLICA = 30
IN_FLIGHT = 12
CITYGRAPH = str(Path(sys.executable).with_name("citygraph"))  # the installed console script
QUERY = "query Records { creditRecords(first: 5) { nodes { id title } } }"


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def shared_config(folder: Path, pg_demo: PgDemo, audit_url: str) -> Path:
    """The one configuration file every replica reads (a mounted ConfigMap in production)."""
    path = folder / "citygraph.toml"
    path.write_text(
        f"""
dev = true
data_dir = "{folder / "var"}"

[policy]
rego_dir = "{ROOT / "policies" / "rego"}"

[audit]
url = "{audit_url}"

[connectors.credit]
url = "{pg_demo.credit}"

[connectors.license]
url = "{pg_demo.license}"

[connectors.spatial]
enabled = false
"""
    )
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CITYGRAPH, *args], env=environment(config), capture_output=True, text=True, timeout=120, check=False
    )


def environment(config: Path, **extra: str) -> dict[str, str]:
    # The secret comes from the environment, never the shared file; every replica gets the same one.
    return {**os.environ, "CITYGRAPH_CONFIG": str(config), "CITYGRAPH_AUTH__SECRET": SECRET, **extra}


@contextlib.contextmanager
def replicas(config: Path, count: int, first_env: Mapping[str, str] | None = None) -> Iterator[list[Replica]]:
    """``count`` gateway processes on free ports, ready; all stopped afterwards, also on failure.
    ``first_env`` is extra environment for the first replica only."""
    started: list[Replica] = []
    try:
        for n in range(count):
            port, log = free_port(), config.parent / f"replica{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [CITYGRAPH, "serve", "--port", str(port)],
                    env=environment(config, **((first_env or {}) if n == 0 else {})),
                    cwd=config.parent,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Replica(process, f"http://127.0.0.1:{port}", log))
        for replica in started:
            wait_ready(replica)
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)  # graceful: finish queued appends
        for replica in started:
            try:
                replica.process.wait(30)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(10)


def wait_ready(replica: Replica) -> None:
    deadline = time.monotonic() + 180  # a busy CI machine starts three at once
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise RuntimeError(f"replica exited at startup:\n{replica.log.read_text(errors='replace')}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{replica.url}/readyz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"replica not ready:\n{replica.log.read_text(errors='replace')}")


@pytest.fixture
def audit_url(pg_server: PgServer) -> Iterator[str]:
    # REPEATABLE READ by default, so a replica reading the chain head in a stale snapshot would fork it.
    with throwaway_database(pg_server, "replicas", default_transaction_isolation="repeatable read") as url:
        yield url


def test_replicas_keep_one_audit_chain(pg_demo: PgDemo, audit_url: str, tmp_path: Path, token: TokenFactory) -> None:
    config = shared_config(tmp_path, pg_demo, audit_url)
    migrated = cli(config, "migrate", "audit")
    assert migrated.returncode == 0, migrated.stderr
    bearers = [
        (token(dept="market_supervision", clearance=3, sub="inspector-1"), {"X-Purpose-Of-Use": "law_enforcement"}),
        (token(roles=["district_officer"], districts=["330203"], sub="officer-2"), {}),
    ]
    sent: list[str] = []

    def read(n: int, replica: Replica) -> dict[str, object]:
        bearer, extra = bearers[n % len(bearers)]
        request_id = uuid.uuid4().hex
        sent.append(request_id)
        headers = {"Authorization": f"Bearer {bearer}", "X-Request-Id": request_id, **extra}
        response = httpx.post(f"{replica.url}/graphql", json={"query": QUERY}, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    # The first replica turns uvicorn's access log on; the others keep the default (off).
    with replicas(config, REPLICAS, first_env={"CITYGRAPH_ACCESS_LOG": "true"}) as running:
        jobs = [(n, running[n % REPLICAS]) for n in range(REPLICAS * REQUESTS_PER_REPLICA)]
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            bodies = list(pool.map(lambda job: read(*job), jobs))
        assert all("errors" not in body and body["data"] for body in bodies), (
            bodies
        )  # every read audited, none withheld
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete; the log says it was clean.
    assert [r.process.returncode for r in running] == [-signal.SIGTERM] * REPLICAS
    assert all("Application shutdown complete." in r.log.read_text() for r in running)
    logs = [r.log.read_text() for r in running]
    assert '"POST /graphql HTTP/1.1" 200' in logs[0]
    assert not any("POST /graphql" in log for log in logs[1:])

    verified = cli(config, "audit", "verify")
    total = REPLICAS * REQUESTS_PER_REPLICA
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"audit verify: OK {total} records (chain intact; head seq {total} ")
    exported = cli(config, "audit", "export")
    assert exported.returncode == 0, exported.stderr
    assert sorted(line.split('"request_id": "')[1][:32] for line in exported.stdout.splitlines()) == sorted(sent)

    # Negative control: the same check catches one edited row in the middle of the chain.
    asyncio.run(execute(audit_url, "UPDATE audit_log SET subject = 'someone-else' WHERE seq = $1", total // 2))
    broken = cli(config, "audit", "verify")
    assert broken.returncode == 1
    assert broken.stdout.startswith(f"audit verify: BROKEN at seq {total // 2} after {total // 2 - 1} intact records")
