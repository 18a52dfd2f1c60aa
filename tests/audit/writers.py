"""Child-process bodies for the multi-process audit tests.

Kept apart from the test modules so a spawned child imports only ``audit``, not the fixtures'
dependencies (demo generators, uvicorn): on a busy machine that import dominated the test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from audit import AuditEntry, AuditTrail


def entry(request_id: str) -> AuditEntry:
    """A typical authenticated read's entry."""
    return AuditEntry(
        request_id=request_id,
        subject="officer-7",
        department="market-supervision",
        purpose="inspection",
        case_ref=None,
        operation_name="CreditLookup",
        document_hash="ab" * 32,
        coordinates=("Query.creditRecords", "CreditRecord.legalRepIdNumber"),
        record_keys={"CreditRecord": ("k1", "k2")},
        policy_revision="rev-42",
        outcome="ok",
        classification=3,
    )


def replica(url: str, name: str, tasks: int, per_task: int, barrier: Any) -> None:
    """Append ``tasks`` x ``per_task`` entries (ids ``name-task-n``), ``tasks`` in flight at once."""

    async def appender(trail: AuditTrail, task: int) -> None:
        for n in range(per_task):
            await trail.append(entry(f"{name}-{task}-{n}"))

    async def run() -> None:
        async with AuditTrail(url) as trail:
            barrier.wait(60)  # every process starts appending at the same moment
            await asyncio.gather(*(appender(trail, task) for task in range(tasks)))

    asyncio.run(run())


__all__ = ["entry", "replica"]
