"""Hot reload: a changed policy folder becomes the active bundle only after it passes every check.

Triggers: a change of any file under the folder (polled, so it works on every filesystem and on
mounted ConfigMaps), ``SIGHUP``, or ``POST /admin/policy/reload``. Each runs the engine's full
``load()`` (lint, child-process compile and tests, atomic swap) in a worker thread; a bad bundle
leaves the previous revision serving, and ``/readyz`` shows the active and the last failed
revision.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from policies.embedded import EmbeddedEngine, LoadResult

log = structlog.get_logger(__name__)


def fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every file under ``folder``; any edit changes it."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path.relative_to(folder)), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class PolicyReloader:
    """Reloads ``engine`` from ``folder`` on change, on SIGHUP and on request; one reload at a time."""

    def __init__(self, engine: EmbeddedEngine, folder: Path, interval_s: float = 2.0) -> None:
        self.engine = engine
        self.folder = folder
        self.interval_s = interval_s
        self._lock = asyncio.Lock()
        self._seen = fingerprint(folder)
        self._task: asyncio.Task[None] | None = None

    async def reload(self, trigger: str) -> LoadResult:
        """Load the folder now; returns what the engine said."""
        async with self._lock:
            self._seen = fingerprint(self.folder)
            result = await asyncio.to_thread(self.engine.load)
        if result.ok:
            log.info("policy reloaded", trigger=trigger, revision=result.revision)
        else:
            log.error("policy reload refused", trigger=trigger, revision=result.revision, errors=result.errors)
        return result

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                if fingerprint(self.folder) != self._seen:
                    await self.reload("file change")
            except OSError as exc:  # a folder being replaced mid-scan: try again next tick
                log.warning("policy folder unreadable", error=str(exc))

    def start(self) -> None:
        """Start watching; installs a SIGHUP handler where the platform has one."""
        self._task = asyncio.create_task(self._watch(), name="citygraph-policy-watch")
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
            import signal

            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("SIGHUP"))
            )

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


__all__ = ["PolicyReloader", "fingerprint"]
