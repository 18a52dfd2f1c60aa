"""Instructions per request, counted by callgrind: a repeatable measure for comparing two builds.

On a shared VM the time a request takes moves by a fifth from run to run, more than most single
changes save. ``valgrind --tool=callgrind`` counts instructions, the same on every repetition, so
two builds are compared by running this script in each checkout. It serves one reference query
in-process — the real credit and licence connectors over the benchmark's SQLite files, the
schema, the executor, decisions applied to records and the audit trail — and counts only the
measured requests: valgrind starts with instrumentation off, it is switched on
(``callgrind_control -i on``) once the warm-up requests are done and off again before anything
is closed.

It serves the requests the benchmark sends: the dossier of one sampled enterprise, the first 20
pages of 100 enterprises and the district officer's first 10 pages of 500 credit records (each
page's cursor taken from the one before), under the officer's row filter for that query, and
encodes each response with orjson as the HTTP handler does, with the server's logging and garbage
collector settings (``edge.logs``, ``edge.collector``). What it leaves out: HTTP (Starlette,
uvicorn, JWT) and Rego. The embedded engine's allocator (snmalloc) aborts under valgrind, so a
static engine answers, allowing every field the query reads and filtering rows as the officer's
policy does; the decision cache and everything after it are the gateway's own.

    .venv/bin/python bench/instructions.py --query page100 [--requests 10] [--generic]

Needs valgrind (``apt-get install valgrind``) and the benchmark's data (``make bench`` makes it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

QUERIES = ("dossier", "page100", "district500")


def _allow_all(doc: Mapping[str, Any]) -> object:
    """Every field the operation reads is allowed (sensitive ones need saying so); credit records
    are filtered to the officer's district, as ``policies/rego/credit.rego`` does for an officer."""
    resource: Any = doc["resource"]
    fields = {f["coordinate"]: {"action": "allow"} for f in resource["fields"]}
    return {"allow": True, "filter": _ROW_FILTERS.get(resource["type"], {}), "fields": fields}


#: The row filters ``_allow_all`` answers, by type: set for the district officer's query only.
_ROW_FILTERS: dict[str, object] = {}


async def _serve(query: str, requests: int, compiled: bool, data: Path, ready: Path | None) -> None:
    import run as bench  # bench/run.py: the reference queries

    from audit import AuditTrail
    from connectors.credit import CreditConnector
    from connectors.license import LicenseConnector
    from edge.collector import serving_collector
    from edge.logs import configure_logging
    from policies.cache import CachingEngine
    from policies.engine import StaticPolicyEngine
    from policies.principal import Principal, Purpose
    from resolvers.context import RequestContext
    from schema.builder import build_schema
    from schema.limits import Limits

    # The server's logging: info and above. structlog's default renders every line, the policy
    # extension's per-decision debug lines among them, work the server never does.
    configure_logging()
    # Under valgrind a read runs tens of times slower than natively: with the default budget a
    # large inline read is interrupted and read again through aiosqlite's thread, a path the
    # server does not take, and counted instead of it. The budget is a wall-clock guard only.
    options: dict[str, Any] = {"inline_read_budget_ms": 60_000}
    connectors: dict[str, Any] = {
        "credit": CreditConnector.from_config(options, data),
        "license": LicenseConnector.from_config(options, data),
    }
    for connector in connectors.values():
        await connector.open()
    built = build_schema(connectors, Limits(), compiled=compiled)
    with tempfile.TemporaryDirectory(prefix="citygraph-instructions-") as scratch:
        audit = AuditTrail(f"sqlite+aiosqlite:///{Path(scratch) / 'audit.sqlite'}")
        await audit.open()
        engine = CachingEngine(StaticPolicyEngine(_allow_all))
        runtime = built.runtime(connectors, engine, audit, dict.fromkeys(connectors, 5.0))
        document = {"dossier": bench.DOSSIER, "page100": bench.PAGE_100, "district500": bench.DISTRICT_500}[query]
        if query == "district500":
            _ROW_FILTERS["CreditRecord"] = {
                "type": "field", "field": "credit_records.district_code", "operator": "in", "value": [bench.DISTRICT]
            }  # fmt: skip
        principal = Principal("bench", "market_supervision", frozenset({"staff"}), frozenset(), 4)

        async def execute(variables: dict[str, Any]) -> Any:
            ctx = RequestContext(
                runtime=runtime, principal=principal, purpose=Purpose("market_supervision"), request_id="i"
            )
            try:
                result = await built.schema.execute(document, variable_values=variables, context_value=ctx)
            finally:
                ctx.close()
            if result.errors:
                raise SystemExit(f"{query}: {result.errors[0]}")
            orjson.dumps({"data": result.data})  # as edge.graphql_http answers
            return result.data

        # The server's collector, set where the server sets it, before its first request:
        # start-up's objects frozen, young collections rare. At Python's defaults the collector
        # re-walked the whole schema, and far more often.
        with serving_collector():
            bodies: list[dict[str, Any]]
            if query == "dossier":
                bodies = [{"u": bench._sample_usccs(data, 1)[0]}]
            else:  # the pages the benchmark requests, each after the one before
                field, count = ("enterprises", 20) if query == "page100" else ("creditRecords", 10)
                bodies = [{"after": None}]
                while len(bodies) < count:
                    page = await execute(bodies[-1])
                    bodies.append({"after": page[field]["pageInfo"]["endCursor"]})
            turn = itertools.cycle(bodies)

            async def one() -> None:
                await execute(next(turn))

            for _ in range(5):  # parse, validation, decisions and plans cached; SQLite pages read
                await one()
            if ready is not None:
                _handshake(ready, str(os.getpid()))  # the parent turns instrumentation on
            for _ in range(requests):
                await one()
            if ready is not None:
                _handshake(ready, "done")  # and off, before anything is closed
        await audit.aclose()
    for connector in connectors.values():
        await connector.aclose()


def _handshake(ready: Path, message: str) -> None:
    """Tell the parent ``message`` and wait, blocking the event loop on purpose, until it has
    acted (it removes the file): nothing runs while instrumentation is switched."""
    ready.write_text(message)
    while ready.exists():
        time.sleep(0.05)


def _count(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind and callgrind_control (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="citygraph-callgrind-") as tmp:
        ready, out = Path(tmp) / "ready", Path(tmp) / "callgrind.out"
        child = [sys.executable, __file__, "--child", str(ready), *sys.argv[1:]]
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *child]
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts on every run
        process = subprocess.Popen(valgrind, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while not ready.exists() or not ready.read_text():
                if process.poll() is not None:
                    raise SystemExit(f"the measured process ended early:\n{process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                time.sleep(0.5)
            subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True)
            ready.unlink()
            while not ready.exists() or ready.read_text() != "done":
                if process.poll() is not None:
                    raise SystemExit("the measured process ended before its requests did")
                time.sleep(0.5)
            subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], check=True, capture_output=True)
            ready.unlink()
            process.wait()
        finally:
            if process.poll() is None:
                process.kill()
        # "totals" counts what was collected while instrumentation was on ("summary" can be 0).
        found = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
        if process.returncode != 0 or found is None:
            raise SystemExit(f"callgrind failed (exit {process.returncode})")
        per_request = int(found.group(1)) / args.requests
        executor = "generic" if args.generic else "compiled"
        print(f"{args.query} ({executor}): {per_request / 1e6:.2f} M instructions per request")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--query", choices=QUERIES, default="page100")
    parser.add_argument("--requests", type=int, default=10, help="measured requests (after 5 unmeasured)")
    parser.add_argument("--generic", action="store_true", help="graphql-core's generic executor")
    parser.add_argument("--scale", type=int, default=100_000, help="the benchmark data set to read")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the process valgrind runs
    args = parser.parse_args()
    data = ROOT / "var" / f"bench-{args.scale}"
    if not (data / "credit.sqlite").exists():
        raise SystemExit(f"{data} is missing: run `make bench` once (it generates the data set)")
    if args.child is None:
        return _count(args)
    asyncio.run(_serve(args.query, args.requests, not args.generic, data, args.child))
    return 0


if __name__ == "__main__":
    sys.exit(main())
