"""Node for the federation tests: Apollo's packages installed from the committed lockfile, and processes.

Node 20+ and npm are required, like PostgreSQL (``tests/postgres.py``): without them every test
that needs them FAILS with the reason, never skips. ``npm ci`` runs once per lockfile change (the
install is reused while ``node_modules/.package-lock.json`` is newer than ``package-lock.json``);
only the npm registry is contacted, never while the tests run. Every process started here is
stopped when its fixture ends, whatever the outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"


def node_tools() -> Path:
    """The installed ``tests/federation/node`` folder; raises RuntimeError naming what is missing."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: the federation tests need Node 20+ and npm on PATH")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        raise RuntimeError(f"the federation tests need Node 20+, found {version}")
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        # --ignore-scripts: the compatibility suite's @apollo/rover postinstall downloads a binary
        # (blocked here, and not needed: tests/federation/compat.mjs replaces rover).
        done = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci failed in {NODE_DIR.name}: {done.stderr[-2000:]}")
    return NODE_DIR


def run_node(
    script: str, *args: str, stdin: str = "", timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a script of the node folder to completion (``env`` is added to this process's environment)."""
    return subprocess.run(
        ["node", str(node_tools() / script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=NODE_DIR,
        env={**os.environ, **(env or {})},
    )


def compose(services: Sequence[dict[str, str]]) -> dict[str, object]:
    """``@apollo/composition`` over ``[{name, url, sdl}]``: ``{supergraphSdl, apiSchema, hints}`` or ``{errors}``."""
    done = run_node("compose.mjs", stdin=json.dumps(services))
    if not done.stdout:
        raise RuntimeError(f"compose.mjs failed: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


@contextlib.contextmanager
def node_process(
    command: Sequence[str],
    *,
    ready: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """Start a Node process (its own process group), wait for ``ready`` on stdout, stop it on exit."""
    proc = subprocess.Popen(
        list(command),
        cwd=cwd or node_tools(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    seen = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if ready in line:
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not seen.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command[:2])} did not start:\n{''.join(lines)[-3000:]}")
        yield proc
    finally:
        stop(proc)
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def stop(proc: subprocess.Popen[str]) -> None:
    """Stop a process started by ``node_process`` and everything it started."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
