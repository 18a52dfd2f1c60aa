"""The benchmark's report (bench/run.py): rounds become one row per cell, ratios per round."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _cell(bench: ModuleType, server: str, rps: float, round_no: int, concurrency: int = 8) -> Any:
    cell = bench.Cell(
        query="dossier", server=server, concurrency=concurrency, rps=rps, p50_ms=1.0, p99_ms=2.0, errors=0,
        completed=100, cpu_ms_per_request=1.0, server_core_busy=1.0, statements_per_request=5.0,
        policy_cpu_share=None, rego_evaluations_per_request=None, rss_mb=100.0, other_cpu_on_server_core=0.0,
        steal_on_server_core=0.0, loadgen_core_busy=0.5, other_cpu_on_loadgen_cores=0.0, ramp_s=1.0,
    )  # fmt: skip
    cell.round = round_no
    return cell


def test_a_row_is_the_median_round_and_its_ratios_are_taken_round_by_round(bench: ModuleType) -> None:
    servers = ["CityGraph (compiled)", "Apollo Server"]
    # The machine slowed down in round 2: both servers lost half, the ratio did not move.
    cells = [
        _cell(bench, "CityGraph (compiled)", 200, 1), _cell(bench, "Apollo Server", 100, 1),
        _cell(bench, "CityGraph (compiled)", 100, 2), _cell(bench, "Apollo Server", 50, 2),
        _cell(bench, "CityGraph (compiled)", 210, 3), _cell(bench, "Apollo Server", 140, 3),
        _cell(bench, "Apollo Server", 70, 1, concurrency=1),
    ]  # fmt: skip
    rows = bench._medians(cells, servers)
    assert [(c.concurrency, c.server) for c, _ in rows] == [
        (1, "Apollo Server"), (8, "CityGraph (compiled)"), (8, "Apollo Server"),
    ]  # fmt: skip
    ours, ratios = rows[1]
    assert ours.rps == 200 and ours.round == 1  # the median of 100, 200 and 210
    assert ratios == [1.5, 2.0, 2.0]  # 210/140, then 200/100 and 100/50: never one round's over another's
    assert bench._ratio_text(ratios) == "2.00 (1.50–2.00)"
    assert rows[2][1] == [] and bench._ratio_text([]) == "–"  # Apollo against itself: no ratio
    assert bench._ratio_text([1.25]) == "1.25"
