"""The generated dev secret: replicas starting together on one data folder agree on it."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

from edge.settings import Settings


def _read_secret(data_dir: str, barrier: Any, results: Any) -> None:
    barrier.wait(60)  # every process generates at the same moment
    results.put(Settings(data_dir=Path(data_dir)).dev_secret())


def test_replicas_on_one_data_folder_get_one_secret(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    count = 4
    barrier, results = ctx.Barrier(count), ctx.Queue()
    processes = [ctx.Process(target=_read_secret, args=(str(tmp_path), barrier, results)) for _ in range(count)]
    try:
        for process in processes:
            process.start()
        secrets = {results.get(timeout=120) for _ in processes}
        for process in processes:
            process.join(30)
        assert [p.exitcode for p in processes] == [0] * count
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(10)
    assert len(secrets) == 1 and len(secrets.pop()) >= 32
    assert stat.S_IMODE((tmp_path / "dev-jwt-secret").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["dev-jwt-secret"]  # no drafts left behind
