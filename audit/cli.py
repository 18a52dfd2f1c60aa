"""Plain functions behind ``citygraph audit ...``; the command-line framework lives in ``gateway``."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

from audit.records import AuditRecord
from audit.trail import AuditQuery, AuditTrail, VerifyReport, plain_values


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


EXPORT_FIELDS = (
    "seq", "ts", "request_id", "subject", "department", "purpose", "case_ref", "operation_name", "document_hash",
    "coordinates", "record_keys", "policy_revision", "outcome", "classification", "prev_hash", "hash", "algorithm",
)  # fmt: skip


def matches(record: AuditRecord, criteria: AuditQuery) -> bool:
    """Whether a record meets every given criterion (the same meaning as ``AuditTrail.search``)."""
    entry = record.entry
    for wanted, actual in (
        (criteria.subject, entry.subject),
        (criteria.department, entry.department),
        (criteria.purpose, entry.purpose),
        (criteria.case_ref, entry.case_ref),
    ):
        if wanted is not None and wanted != actual:
            return False
    if criteria.record_key is not None and not any(criteria.record_key in keys for keys in entry.record_keys.values()):
        return False
    if criteria.since is not None and record.ts < criteria.since:
        return False
    return criteria.until is None or record.ts <= criteria.until


async def _export(url: str, criteria: AuditQuery, fmt: str, out: TextIO) -> int:
    trail = AuditTrail(url)
    written, after = 0, 0
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    try:
        while chunk := await trail.records(after_seq=after, limit=1000):
            after = chunk[-1].seq
            for record in chunk:
                if not matches(record, criteria):
                    continue
                row = plain_values(record)
                if writer is not None:
                    flat = {
                        k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v
                        for k, v in row.items()
                    }
                    writer.writerow(flat)
                else:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                written += 1
    finally:
        await trail.aclose()
    return written


def export_command(url: str, criteria: AuditQuery, fmt: str, out: TextIO) -> int:
    """Write matching records, oldest first, as JSONL or CSV to ``out``; returns 0, or 1 on error."""
    missing = _missing_sqlite_file(url)
    if missing is not None:
        print(f"audit export: ERROR no audit database at {missing}", file=sys.stderr)
        return 1
    written = asyncio.run(_export(url, criteria, fmt, out))
    print(f"audit export: {written} records", file=sys.stderr)
    return 0


__all__ = ["EXPORT_FIELDS", "export_command", "matches", "verify_command"]
