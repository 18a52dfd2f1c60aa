"""Apollo's federation subgraph compatibility suite against a "products" subgraph built with the connector SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, LiveServer, make_settings, serve
from tests.federation.node import run_node
from tests.federation.products import ProductsConnector, policy_dir

#: Every group the suite reports, required or not: ftv1 (federated tracing) included.
GROUPS = {
    "introspection",
    "@key single",
    "@key multiple",
    "@key composite",
    "repeatable @key",
    "@requires",
    "@provides",
    "@external",
    "@shareable",
    "@tag",
    "@inaccessible",
    "@override",
    "@composeDirective",
    "@interfaceObject",
    "@link",
    "ftv1",
}


@pytest.fixture(scope="module")
def products(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The products subgraph: ``create_app(subgraph="products")`` over ``ProductsConnector``."""
    folder = tmp_path_factory.mktemp("products")
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{folder / 'audit.sqlite'}"})
    rego = policy_dir(folder / "rego", ROOT / "policies" / "rego")
    settings = settings.model_copy(update={"policy": settings.policy.model_copy(update={"rego_dir": rego})})
    with serve(settings, subgraph="products", connectors={"products": ProductsConnector()}) as server:
        yield server


def test_products_subgraph_passes_the_compatibility_suite(node_dir: Path, products: LiveServer) -> None:
    # The suite calls http://localhost:4000 and friends, which listen on 127.0.0.1 only.
    ipv4 = {"NODE_OPTIONS": "--dns-result-order=ipv4first"}
    done = run_node("compat.mjs", f"{products.url}/graphql", timeout=600, env=ipv4)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"compat.mjs printed no result:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in report, report["error"]
    results = {r["assertion"]: r for r in report["results"]}
    failed = {name: r["failures"] for name, r in results.items() if not r["passed"]}
    assert not failed, json.dumps(failed, indent=1)[:6000]
    assert set(results) >= GROUPS - {"@external", "repeatable @key"}, sorted(results)


def test_products_subgraph_answers_queries_directly(products: LiveServer) -> None:
    body = products.post('{ product(id: "apollo-federation") { sku createdBy { email name } } }').json()
    assert body == {
        "data": {
            "product": {"sku": "federation", "createdBy": {"email": "support@apollographql.com", "name": "Jane Smith"}}
        }
    }
