"""Fixtures for the federation tests: the subgraphs, the combined gateway and Apollo Gateway, all live."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from connectors.registry import enable
from schema.federation import subgraph_names
from tests.conftest import LiveServer, free_port, make_settings, serve
from tests.federation.node import node_process, node_tools


@dataclass
class Router:
    """A federation router on 127.0.0.1 (Apollo Gateway here), posting like ``LiveServer``."""

    url: str

    def post(self, query: str, bearer: str | None = None, **kwargs: object) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        body = {"query": query, "variables": kwargs.pop("variables", None)}
        return httpx.post(self.url, json=body, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def node_dir() -> Path:
    """Apollo's packages, installed from the lockfile (fails with the reason when Node is missing)."""
    return node_tools()


@pytest.fixture(scope="module")
def subgraph_audits(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The audit trail (a SQLite file) of each subgraph of the demo configuration (spatial on)."""
    settings = make_settings(demo_dir, spatial=True)
    names = subgraph_names(enable(settings.connectors, settings.data_dir))
    return {name: tmp_path_factory.mktemp(f"audit-{name}") / "audit.sqlite" for name in names}


@pytest.fixture(scope="module")
def subgraphs(demo_dir: Path, subgraph_audits: dict[str, Path]) -> Iterator[dict[str, LiveServer]]:
    """Every subgraph, served on 127.0.0.1; each verifies tokens, decides and audits itself."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, audit in subgraph_audits.items():
            part = make_settings(demo_dir, spatial=True, audit={"url": f"sqlite+aiosqlite:///{audit}"})
            servers[name] = stack.enter_context(serve(part, subgraph=name))
        yield servers


@pytest.fixture(scope="module")
def combined(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The combined gateway over the same configuration."""
    audit = tmp_path_factory.mktemp("audit-combined") / "audit.sqlite"
    with serve(make_settings(demo_dir, spatial=True, audit={"url": f"sqlite+aiosqlite:///{audit}"})) as server:
        yield server


@pytest.fixture(scope="module")
def apollo_gateway(node_dir: Path, subgraphs: dict[str, LiveServer]) -> Iterator[Router]:
    """Apollo Gateway (IntrospectAndCompose) in front of the subgraphs, forwarding identity."""
    port = free_port()
    routes = [f"{name}={server.url}/graphql" for name, server in subgraphs.items()]
    with node_process(["node", "gateway.mjs", "--port", str(port), *routes], ready="ready"):
        yield Router(url=f"http://127.0.0.1:{port}/")
