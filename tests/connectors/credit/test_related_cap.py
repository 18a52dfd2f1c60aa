"""The per-enterprise cap on related credit records (the policy's ``max_rows``): the plain
statement capped in Python, and the window function it falls back to when its bound is reached,
both give each enterprise's newest ``limit`` records, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.base import FetchRequest, Record
from connectors.credit import CreditConnector

UNKNOWN = ["91330200AAAAAAAAA1", "91330200AAAAAAAAA2", "91330200AAAAAAAAA3"]  # no records


@pytest.fixture
def busiest(demo_dir: Path) -> list[tuple[str, int]]:
    """The three enterprises with the most records, and how many each holds."""
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        sql = "SELECT uscc, count(*) FROM credit_records GROUP BY uscc ORDER BY count(*) DESC, uscc LIMIT 3"
        return [(str(u), int(n)) for u, n in conn.execute(sql)]


async def _related(credit: CreditConnector, keys: list[str], limit: int | None) -> Sequence[Sequence[Record]]:
    request = FetchRequest("CreditRecord", keys, None, {}, by="uscc", limit=limit)
    return await credit.fetch_related(request)


async def test_each_enterprise_keeps_its_newest_records(
    credit: CreditConnector, busiest: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    caps: list[str | None] = []
    related = CreditConnector._related

    def spy(self: CreditConnector, row_filter: Any, cap: str | None, *args: Any) -> Any:
        caps.append(cap)
        return related(self, row_filter, cap, *args)

    monkeypatch.setattr(CreditConnector, "_related", spy)
    (top, most), (second, _), _ = busiest
    assert most >= 3
    keys = [top, second]
    every = await _related(credit, keys, None)
    assert len(every[0]) == most
    for limit in (1, most - 1, most, most + 1):
        expected = [list(group[:limit]) for group in every]
        for extra in ([], UNKNOWN):  # without and with keys that widen the bound past every record
            caps.clear()
            got = await _related(credit, keys + extra, limit)
            assert [list(g) for g in got] == expected + [[] for _ in extra], (limit, extra)
            plain_suffices = limit * len(keys + extra) >= sum(len(g) for g in every)
            assert caps == (["total"] if plain_suffices else ["total", "window"]), (limit, extra)
    # Both paths ran: a bound reached (window) and a bound not reached with a group over the cap.
    caps.clear()
    await _related(credit, [top], most - 1)
    assert caps == ["total", "window"]
    caps.clear()
    capped = await _related(credit, [top, *UNKNOWN], most - 1)
    assert caps == ["total"] and len(capped[0]) == most - 1
    # A bound past what a plain read should hold (a large max_rows): ranked in SQL from the start.
    caps.clear()
    huge = await _related(credit, keys, 2**62)
    assert caps == ["window"] and [list(g) for g in huge] == [list(g) for g in every]
