"""A request's objects are freed by reference counting when it ends, not by the cyclic collector.

Loaders refer back to their request's context, so without ``RequestContext.close`` a request's
records stay in a reference cycle until a collection walks them: milliseconds of pauses per large
response, and memory held between collections. graphql-core's executor made a cycle of its own
through its resolver helpers (``schema.acyclic``), holding the request context with it.
"""

from __future__ import annotations

import gc
import time
import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.testclient import TestClient

from gateway import create_app
from resolvers import loaders
from resolvers.context import RequestContext
from resolvers.records import materialize
from schema.acyclic import AcyclicExecutionContext
from tests.conftest import TokenFactory, make_settings

QUERY = """{ enterprises(first: 5) { nodes { uscc legalRepresentative { name } licenses { type }
  credit { rating records { id title } } } } }"""
DOSSIER = "query($u: USCC!) { enterprise(uscc: $u) { name phone legalRepresentative { name } } }"


@pytest.mark.parametrize("denied", [False, True], ids=["allowed", "with-a-denied-field"])
def test_records_are_freed_when_the_request_ends(
    demo_dir: Path, tmp_path: Path, token: TokenFactory, monkeypatch: pytest.MonkeyPatch, denied: bool
) -> None:
    made: list[weakref.ref[object]] = []
    kinds: set[str] = set()

    def tracked(*args: object) -> list[object]:
        objects = materialize(*args)  # type: ignore[arg-type]
        made.extend(weakref.ref(o) for o in objects)
        kinds.update(type(o).__name__ for o in objects)
        return objects

    monkeypatch.setattr(loaders, "materialize", tracked)
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    headers = {"Authorization": f"Bearer {token(dept='market_supervision', clearance=4)}"}
    # A denied field's value is an error that graphql-core raises on the generic path (a single
    # object): raised from a plan shared across requests, its traceback kept every request alive.
    query = DOSSIER if denied else QUERY
    with TestClient(create_app(settings)) as client:
        gc.disable()  # only reference counting may free them
        try:
            uscc = client.post("/graphql", json={"query": QUERY}, headers=headers).json()
            variables = {"u": uscc["data"]["enterprises"]["nodes"][0]["uscc"]}
            # Clearance 1: the enterprise's phone (L2) is denied.
            low = {"Authorization": f"Bearer {token(dept='market_supervision', clearance=1)}"} if denied else headers
            for _ in range(2):
                body = client.post("/graphql", json={"query": query, "variables": variables}, headers=low).json()
                codes = {e["extensions"]["code"] for e in body.get("errors", [])}
                assert codes == ({"FORBIDDEN"} if denied else set())
                assert body["data"]["enterprises" if not denied else "enterprise"]
            # The response can reach the client a moment before the handler has returned.
            deadline = time.monotonic() + 5
            while any(ref() is not None for ref in made) and time.monotonic() < deadline:
                time.sleep(0.01)
            # A raised error's traceback held its record (and the executor): released once the
            # operation ends (schema.errors.release_tracebacks), so no collection is needed here.
            alive = sorted({type(obj).__name__ for ref in made if (obj := ref()) is not None})
        finally:
            gc.enable()
    assert {"Enterprise", "Person", "License", "CreditProfile", "CreditRecord"} <= kinds
    assert alive == []


@pytest.mark.parametrize("denied", [False, True], ids=["allowed", "with-a-denied-field"])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "generic"])
def test_the_executor_and_request_state_are_freed_when_the_request_ends(
    demo_dir: Path,
    tmp_path: Path,
    token: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    compiled: bool,
    denied: bool,
) -> None:
    # graphql-core's executor keeps its resolver helpers as its own bound methods, and a field
    # error's traceback holds the executor's frames: unless both are released, the executor, the
    # request context and all they hold wait for the cyclic collector.
    executors: list[weakref.ref[object]] = []
    contexts: list[weakref.ref[object]] = []  # what the request context holds (it has no weakref slot)
    init = AcyclicExecutionContext.__init__

    def tracked(self: AcyclicExecutionContext, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        executors.append(weakref.ref(self))
        contexts.append(weakref.ref(self.context_value.loaders))

    monkeypatch.setattr(AcyclicExecutionContext, "__init__", tracked)
    settings = make_settings(
        demo_dir,
        audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"},
        execution={"compiled": compiled},
    )
    headers = {"Authorization": f"Bearer {token(dept='market_supervision', clearance=4)}"}
    # Clearance 1: the enterprise's phone (L2) is denied, a FORBIDDEN error in the response.
    low = {"Authorization": f"Bearer {token(dept='market_supervision', clearance=1)}"}
    with TestClient(create_app(settings)) as client:
        page = client.post("/graphql", json={"query": QUERY}, headers=headers).json()
        variables = {"u": page["data"]["enterprises"]["nodes"][0]["uscc"]}
        executors.clear()
        contexts.clear()
        gc.collect()
        gc.disable()  # only reference counting may free them
        try:
            for _ in range(2):
                if denied:
                    body = client.post("/graphql", json={"query": DOSSIER, "variables": variables}, headers=low).json()
                    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
                    assert body["data"]["enterprise"]["name"]
                else:
                    body = client.post("/graphql", json={"query": QUERY}, headers=headers).json()
                    assert "errors" not in body and body["data"]["enterprises"]["nodes"]
            deadline = time.monotonic() + 5  # the handler may return a moment after the response
            while any(ref() is not None for ref in executors + contexts) and time.monotonic() < deadline:
                time.sleep(0.01)
            alive = [type(obj).__name__ for ref in executors + contexts if (obj := ref()) is not None]
        finally:
            gc.enable()
    assert len(executors) == len(contexts) == 2
    assert alive == []


def test_young_collections_are_rarer_while_serving(demo_dir: Path, tmp_path: Path) -> None:
    before = gc.get_threshold()
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    with TestClient(create_app(settings)):
        assert gc.get_threshold() == (10_000, *before[1:])
    assert gc.get_threshold() == before  # restored: tests run several apps in one process


async def test_loaders_made_after_the_response_are_not_kept() -> None:
    runtime: Any = SimpleNamespace(connectors={"credit": object()})
    ctx = RequestContext(runtime=runtime, principal=cast(Any, None), purpose=cast(Any, None), request_id="r")
    first = loaders._loader(ctx, "credit", "CreditRecord", "uscc", {})
    assert loaders._loader(ctx, "credit", "CreditRecord", "uscc", {}) is first  # one per key while it runs
    ctx.close()
    assert not ctx.loaders
    # Work graphql-core settles after the response still gets a loader, which is not kept: kept,
    # it would tie the request's objects into a cycle again.
    late = loaders._loader(ctx, "credit", "CreditRecord", "uscc", {})
    assert late is not first and not ctx.loaders
