"""Guards on the plugin surface: every connector is discoverable, documented and has policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Connector
from connectors.errors import ConnectorConfigError
from connectors.registry import available, enable
from connectors.testing import FakeConnector

ROOT = Path(__file__).resolve().parent.parent


def test_built_in_connectors_are_discovered_through_entry_points() -> None:
    found = available()
    assert "credit" in found and issubclass(found["credit"], object)


def test_only_configured_connectors_are_enabled(tmp_path: Path) -> None:
    assert enable({}, tmp_path, classes={"fake": FakeConnector}) == {}
    enabled = enable({"fake": {}}, tmp_path, classes={"fake": FakeConnector})
    assert isinstance(enabled["fake"], Connector)
    assert enable({"fake": {"enabled": False}}, tmp_path, classes={"fake": FakeConnector}) == {}


def test_configuring_an_unknown_connector_fails_startup(tmp_path: Path) -> None:
    with pytest.raises(ConnectorConfigError, match="not installed"):
        enable({"video": {}}, tmp_path, classes={"fake": FakeConnector})


def test_every_policy_module_has_tests() -> None:
    rego = ROOT / "policies" / "rego"
    modules = [p for p in rego.glob("*.rego") if not p.stem.endswith("_test")]
    assert modules
    for module in modules:
        assert (rego / f"{module.stem}_test.rego").exists(), f"{module.name} has no {module.stem}_test.rego"


def test_every_connector_has_a_policy_and_a_docs_section() -> None:
    docs = (ROOT / "docs" / "connectors.md").read_text()
    for name, cls in available().items():
        assert (ROOT / "policies" / "rego" / f"{cls.info.department}.rego").exists(), name
        assert f"## `{name}`" in docs, f"docs/connectors.md has no section for {name}"
