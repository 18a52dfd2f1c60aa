"""The gate (``schema.gate``): token, depth and cost limits, introspection, the parse cache and
error codes, on a small schema of its own."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from schema import gate as gate_module
from schema.errors import normalise
from schema.gate import CACHED_QUERY_CHARS, gate
from schema.limits import Limits

LIMITS = Limits(max_depth=3, max_aliases=2, max_cost=50, max_tokens=40)
CALLS: list[str] = []


@strawberry.type
class Item:
    name: str

    @strawberry.field
    def child(self) -> Item:
        return Item(name=self.name + "'")


@strawberry.type
class Query:
    @strawberry.field
    def items(self, first: int) -> list[Item]:
        CALLS.append("items")
        return [Item(name=str(i)) for i in range(first)]

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("a secret detail")


def _schema(*, introspection: bool = True) -> strawberry.Schema:
    return strawberry.Schema(query=Query, extensions=[gate(LIMITS, introspection=introspection)])


async def _run(schema: strawberry.Schema, query: str, variables: dict[str, Any] | None = None) -> Any:
    CALLS.clear()
    return await schema.execute(query, variable_values=variables)


def _codes(result: Any) -> list[str]:
    # Syntax errors end the operation before the gate's hook resumes: the HTTP layer codes them
    # (edge.graphql_http._format_errors), with the same function.
    coded = [e if (e.extensions or {}).get("code") else normalise(e, executed=False) for e in result.errors or []]
    return [str((e.extensions or {})["code"]) for e in coded]


def test_the_gate_is_one_hook() -> None:
    # The point of the gate: strawberry wraps each hook of each extension per request.
    extension = gate(LIMITS)
    hooks = ("on_operation", "on_parse", "on_validate", "on_execute")
    assert [h for h in hooks if getattr(extension, h) is not getattr(SchemaExtension, h)] == ["on_operation"]


async def test_a_valid_operation_runs() -> None:
    result = await _run(_schema(), "query Q($n: Int!) { items(first: $n) { name } }", {"n": 2})
    assert result.errors is None and result.data == {"items": [{"name": "0"}, {"name": "1"}]}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ items(first: 1) { child { child { child { name } } } } }", None),  # depth 4 > 3
        ("{ a: items(first: 1) { name } b: items(first: 1) { name } c: items(first: 1) { name } }", None),
        ("query Q($n: Int!) { items(first: $n) { name child { name } } }", {"n": 30}),  # cost over 50
        ("{ " + "__typename " * 40 + "}", None),  # over 40 tokens
    ],
    ids=["depth", "aliases", "cost", "tokens"],
)
async def test_over_a_limit_is_refused_before_any_resolver(query: str, variables: dict[str, Any] | None) -> None:
    result = await _run(_schema(), query, variables)
    assert result.data is None and _codes(result) == ["QUERY_TOO_COMPLEX"]
    assert CALLS == []


async def test_invalid_documents_are_refused_without_suggestions() -> None:
    result = await _run(_schema(), "{ itemz(first: 1) { name } }")
    assert result.data is None and _codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in result.errors[0].message


async def test_introspection_off_refuses_schema_and_type_but_not_typename() -> None:
    closed, open_ = _schema(introspection=False), _schema()
    for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Item") { name } }'):
        refused = await _run(closed, query)
        assert refused.data is None and set(_codes(refused)) == {"GRAPHQL_VALIDATION_FAILED"}, query
        assert "introspection has been disabled" in refused.errors[0].message
        assert (await _run(open_, query)).errors is None, query
    assert (await _run(closed, "{ __typename }")).data == {"__typename": "Query"}


async def test_unexpected_errors_get_a_code_and_an_id_but_no_detail() -> None:
    result = await _run(_schema(), "{ broken }")
    [error] = result.errors
    assert error.extensions["code"] == "INTERNAL_SERVER_ERROR" and len(error.extensions["errorId"]) == 32
    assert "secret" not in error.message


async def test_the_parse_cache_hands_out_one_document_per_short_text() -> None:
    gate_module._cached_parse.cache_clear()
    schema = _schema()
    short = "{ items(first: 1) { name } }"
    for _ in range(3):
        assert (await _run(schema, short)).errors is None
    info = gate_module._cached_parse.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    # A long text (here: padding) is parsed every time, so the cache's size stays bounded.
    long = short + " " * CACHED_QUERY_CHARS
    assert (await _run(schema, long)).errors is None
    assert gate_module._cached_parse.cache_info().currsize == 1
    # A syntax error is reported each time, never cached.
    for _ in range(2):
        assert _codes(await _run(schema, "{ items(first: 1) { name }")) == ["GRAPHQL_PARSE_FAILED"]
    assert gate_module._cached_parse.cache_info().currsize == 1
