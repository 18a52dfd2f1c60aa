"""Shared fixtures: a small deterministic demo database, settings, tokens, and a real server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import event

from connectors.credit.demo import generate
from connectors.license.demo import generate as license_demo
from connectors.spatial.demo import generate as spatial_demo
from connectors.video.demo import generate as video_demo
from edge.identity import mint_dev_token
from edge.settings import AuthSettings, Settings

# PostgreSQL fixtures (pg_server, pg_demo, live_pg, live_each): tests/postgres.py.
pytest_plugins = ["tests.postgres"]

SECRET = "test-secret-0123456789-abcdefghijklmnop"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the credit demo database (300 enterprises, seed 7)."""
    folder = tmp_path_factory.mktemp("var")
    generate(folder / "credit.sqlite", scale=300, seed=7)
    license_demo(folder / "license.sqlite", credit_db=folder / "credit.sqlite", seed=7)
    spatial_demo(folder / "spatial.gpkg", credit_db=folder / "credit.sqlite", seed=7)
    video_demo(folder / "video.sqlite", spatial_gpkg=folder / "spatial.gpkg", seed=7)
    return folder


def make_settings(data_dir: Path, *, spatial: bool = False, video: bool = False, **overrides: object) -> Settings:
    """Settings for tests: the demo data folder, a fixed HS256 secret, the repo's policies.

    ``spatial=True`` enables the spatial connector on ``data_dir/spatial.gpkg``; otherwise it is
    off (citygraph.toml's ``[connectors.spatial]`` would be merged in and turn it on everywhere).
    ``video=True`` likewise enables the video library on ``data_dir/video.sqlite``.
    """
    values: dict[str, object] = {
        "data_dir": data_dir,
        "auth": AuthSettings(secret=SecretStr(SECRET)),
        # Every connector named explicitly: pydantic-settings merges citygraph.toml's tables into these.
        "connectors": {
            "credit": {"url": f"sqlite+aiosqlite:///{data_dir / 'credit.sqlite'}"},
            "license": {"url": f"sqlite+aiosqlite:///{data_dir / 'license.sqlite'}"},
        },
        "audit": {"url": f"sqlite+aiosqlite:///{data_dir / 'audit.sqlite'}"},
    }
    values.update(overrides)
    connectors = dict(values["connectors"])  # type: ignore[call-overload]
    connectors.setdefault("spatial", {"path": str(data_dir / "spatial.gpkg")} if spatial else {"enabled": False})
    connectors.setdefault(
        "video", {"url": f"sqlite+aiosqlite:///{data_dir / 'video.sqlite'}"} if video else {"enabled": False}
    )
    values["connectors"] = connectors
    settings = Settings(**values)  # type: ignore[arg-type]
    return settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"rego_dir": ROOT / "policies/rego"})}
    )


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def token() -> TokenFactory:
    """Mint a dev token: ``token(dept=..., roles=[...], districts=[...], clearance=N)``."""

    def mint(
        dept: str = "",
        roles: list[str] | None = None,
        districts: list[str] | None = None,
        clearance: int = 2,
        sub: str = "tester",
        ttl_s: int = 600,
    ) -> str:
        return mint_dev_token(
            SECRET,
            AuthSettings(),
            subject=sub,
            department=dept,
            roles=roles or ["staff"],
            districts=districts or [],
            clearance=clearance,
            ttl_s=ttl_s,
        )

    return mint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A gateway served by uvicorn on 127.0.0.1 in a background thread."""

    url: str
    server: uvicorn.Server
    app: object

    def post(self, query: str, bearer: str | None = None, **kwargs: object) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        body = {"query": query, "variables": kwargs.pop("variables", None)}
        return httpx.post(f"{self.url}/graphql", json=body, headers=headers, timeout=30)

    @contextlib.contextmanager
    def on_statements(self, connector: str, callback: Callable[..., None]) -> Iterator[None]:
        """Call ``callback(conn, cursor, statement, parameters, context, executemany)`` for every SQL
        statement ``connector`` sends while the block runs, on every engine its reads may use (the
        inline SQLite engine and the async one: ``connectors.sql.Reader``)."""
        engines = self.app.state.gateway.runtime.connectors[connector].reader.engines  # type: ignore[attr-defined]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", callback)
        try:
            yield
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", callback)

    @contextlib.contextmanager
    def counting_statements(self, *connectors: str) -> Iterator[dict[str, int]]:
        """Statements each of ``connectors`` sends while the block runs, counted in the dict yielded."""
        counts = dict.fromkeys(connectors, 0)
        with contextlib.ExitStack() as stack:
            for name in connectors:

                def bump(*_: Any, name: str = name) -> None:
                    counts[name] += 1

                stack.enter_context(self.on_statements(name, bump))
            yield counts


@contextlib.contextmanager
def serve(settings: Settings, subgraph: str | None = None, connectors: Any = None) -> Iterator[LiveServer]:
    """Serve a gateway (or one ``subgraph`` of it) with ``settings`` on a free port until the block ends."""
    from gateway import create_app

    app = create_app(settings, subgraph=subgraph, connectors=connectors)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", server=server, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def live_sqlite(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server over real HTTP, with its own audit database."""
    audit_dir = tmp_path_factory.mktemp("audit")
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{audit_dir / 'audit.sqlite'}"})
    with serve(settings) as server:
        yield server


@pytest.fixture(scope="module")
def live(live_sqlite: LiveServer) -> LiveServer:
    """The live server on SQLite; a module overriding ``live`` with ``live_each`` runs on PostgreSQL too."""
    return live_sqlite
