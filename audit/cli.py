"""Plain functions behind ``citygraph audit ...``; the command-line framework lives in ``gateway``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from audit.trail import AuditTrail, VerifyReport


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names if it does not exist (connecting would create it empty)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") in ("true", "1"):
        return None  # a file: URI may carry its own mode; let SQLite interpret it
    path = Path(database)
    return None if path.exists() else path


async def _verify(url: str) -> VerifyReport:
    trail = AuditTrail(url)
    try:
        return await trail.verify()
    finally:
        await trail.aclose()


def verify_command(url: str) -> int:
    """Verify the trail at ``url``, print one line, return 0 if intact and 1 otherwise.

    Never creates anything: a missing SQLite file is an error, not an empty (and so intact)
    trail. Must be called outside a running event loop.
    """
    missing = _missing_sqlite_file(url)
    if missing is not None:
        print(f"audit verify: ERROR no audit database at {missing}", file=sys.stderr)
        return 1
    try:
        report = asyncio.run(_verify(url))
    except Exception as exc:
        # The first line names the failure; SQLAlchemy adds the statement and a help link after it.
        summary = next(iter(str(exc).splitlines()), "")
        print(f"audit verify: ERROR cannot read the trail: {type(exc).__name__}: {summary}", file=sys.stderr)
        return 1
    if report.ok:
        print(f"audit verify: OK {report.checked} records ({report.reason})")
        return 0
    print(
        f"audit verify: BROKEN at seq {report.first_broken_seq} after {report.checked} intact records: {report.reason}"
    )
    return 1


__all__ = ["verify_command"]
