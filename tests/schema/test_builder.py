"""Schema composition: shared entities, owners, and classification conflicts fail the build."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import strawberry
from graphql import GraphQLSchema, parse, print_ast
from strawberry.schema.schema import validate_document

from connectors.base import ConnectorInfo, SchemaContribution
from connectors.credit import CreditConnector
from connectors.errors import ConnectorConfigError
from connectors.testing import FakeConnector
from schema.builder import build_schema
from schema.directives import classified
from schema.limits import Limits
from schema.per_document import CACHED_QUERY_CHARS, PerDocument
from schema.scalars import USCC, Adcode


@strawberry.type
class SecretName:
    uscc: USCC = classified(1, "统一社会信用代码 (USCC)")
    name: str = classified(2, "名称 (name, but internal here)")
    district_code: Adcode = classified(1, "行政区划代码 (district)")


class Owner(FakeConnector):
    info: ClassVar[ConnectorInfo] = ConnectorInfo(name="owner", department="x", version="0", entities=("Enterprise",))

    def schema(self) -> SchemaContribution:
        return SchemaContribution(entity_fields={"Enterprise": SecretName}, owns={"Enterprise": 99}, keys={})


def credit(tmp_path: Path) -> CreditConnector:
    return CreditConnector.from_config({}, tmp_path)


@pytest.mark.parametrize("order", [("owner", "credit"), ("credit", "owner")])
def test_conflicting_classification_of_a_shared_field_fails_the_build(tmp_path: Path, order: tuple[str, str]) -> None:
    connectors: Mapping[str, object] = {"owner": Owner({}), "credit": credit(tmp_path)}
    with pytest.raises(ConnectorConfigError, match=r"Enterprise\.name"):
        build_schema({name: connectors[name] for name in order}, Limits())  # type: ignore[misc]


def test_the_owner_decides_for_links_into_a_shared_entity(tmp_path: Path) -> None:
    built = build_schema({"credit": credit(tmp_path)}, Limits())
    assert built.owners == {"Enterprise": "credit"}
    meta = built.catalog.get("CreditRecord.enterprise")
    assert meta is not None and (meta.connector, meta.resource_type) == ("credit", "Enterprise")
    assert built.catalog.get("Query.enterprise") is not None


async def test_a_document_is_validated_once_and_its_errors_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = validate_document

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        calls.append(print_ast(document))
        return original(schema, document, rules)

    monkeypatch.setattr("schema.gate.validate_document", counting)
    schema = build_schema({"credit": credit(tmp_path)}, Limits()).schema
    for _ in range(3):
        result = await schema.execute("{ gatewayVersion }")
        assert result.errors is None
    bad = "{ gatewayVersion nope }"
    for _ in range(2):
        result = await schema.execute(bad)
        assert result.errors and "nope" in result.errors[0].message
    assert calls == ["{\n  gatewayVersion\n}", "{\n  gatewayVersion\n  nope\n}"]
    # Another schema never reads this one's results, even for the same document.
    other = build_schema({"credit": credit(tmp_path)}, Limits()).schema
    assert (await other.execute("{ gatewayVersion }")).errors is None
    assert len(calls) == 3


def test_per_document_values_are_keyed_by_identity_not_equality() -> None:
    cache: PerDocument[str] = PerDocument(2)
    schema = GraphQLSchema()
    first, equal = parse("{ a }"), parse("{ a }")
    assert first == equal  # graphql-core's nodes compare (and hash) by value
    assert cache.get(schema, first, None, lambda: "first") == "first"
    assert cache.get(schema, first, None, lambda: "again") == "first"
    assert cache.get(schema, equal, None, lambda: "equal") == "equal"
    assert cache.get(schema, first, "other", lambda: "extra") == "extra"  # evicts the oldest entry
    assert cache.get(schema, first, None, lambda: "recomputed") == "recomputed"
    assert cache.get(GraphQLSchema(), first, None, lambda: "another schema") == "another schema"


def test_nothing_is_kept_for_a_document_parsed_from_a_long_text() -> None:
    # Parsed anew for every request, such a document would never be found again, and an entry
    # would keep up to a megabyte of query text alive: every per-document cache computes instead.
    cache: PerDocument[int] = PerDocument(8)
    schema = GraphQLSchema()
    short, long = parse("{ a }"), parse("{ a }" + " " * CACHED_QUERY_CHARS)
    operation = long.definitions[0]
    calls = iter(range(10))
    assert [cache.get(schema, short, None, lambda: next(calls)) for _ in range(2)] == [0, 0]
    assert [cache.get(schema, long, None, lambda: next(calls)) for _ in range(2)] == [1, 2]
    assert [cache.get(schema, operation, None, lambda: next(calls)) for _ in range(2)] == [3, 4]  # its nodes too
    assert len(cache) == 1


async def test_the_gateway_version_is_read_from_the_package_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # importlib.metadata parses the package's metadata file on every call (about 0.3 ms).
    import importlib.metadata

    from schema import builder

    reads: list[str] = []

    def version(name: str) -> str:
        reads.append(name)
        return "9.9.9"

    monkeypatch.setattr(importlib.metadata, "version", version)
    builder._gateway_version.cache_clear()
    try:
        schema = build_schema({}, Limits()).schema
        for _ in range(3):
            result = await schema.execute("{ gatewayVersion }")
            assert result.errors is None and result.data == {"gatewayVersion": "9.9.9"}
        assert reads == ["citygraph"]
    finally:
        builder._gateway_version.cache_clear()  # the next reader gets the installed version again
