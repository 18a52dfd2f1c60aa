"""The gate (``schema.gate``): token, depth and cost limits, introspection, the parse cache and
error codes, on a small schema of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import strawberry
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension

from audit import AuditTrail
from connectors.credit import CreditConnector
from policies.engine import StaticPolicyEngine
from policies.principal import Principal, Purpose
from resolvers.context import RequestContext
from schema import gate as gate_module
from schema.builder import build_schema
from schema.errors import normalise
from schema.federation import build_subgraph
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


def _codes(result: Any) -> list[str | None]:
    """The codes the gate gave the errors (None: it gave none)."""
    return [(e.extensions or {}).get("code") for e in result.errors or []]


def _syntax_codes(result: Any) -> list[str]:
    """Codes of errors that end the operation before the gate resumes (syntax, token limit): the
    HTTP layer gives them, with the same function (``edge.graphql_http._format_errors``)."""
    assert _codes(result) == [None] * len(result.errors or [])
    return [str((normalise(e, executed=False).extensions or {})["code"]) for e in result.errors or []]


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
    ],
    ids=["depth", "aliases", "cost"],
)
async def test_over_a_limit_is_refused_before_any_resolver(query: str, variables: dict[str, Any] | None) -> None:
    result = await _run(_schema(), query, variables)
    assert result.data is None and _codes(result) == ["QUERY_TOO_COMPLEX"]
    assert CALLS == []


async def test_the_cost_of_one_document_follows_its_variables_every_time() -> None:
    # Costs are kept per document and the values of the variables that size lists: a cached
    # estimate must never let a larger page through, nor refuse a smaller one.
    schema = _schema()
    spread = "query Q($n: Int = 17) { ...F } fragment F on Query { items(first: $n) { name child { name } } }"
    # JSON's 17.0 is the Int 17 to graphql-core, so it sizes the page as 17 does.
    sizes = ((16, False), (17, True), (16, False), (30, True), (None, True), (16, False), (17.0, True), (16.0, False))
    for n, refused in sizes:
        result = await _run(schema, spread, None if n is None else {"n": n})  # n None: the default, 17
        assert _codes(result) == (["QUERY_TOO_COMPLEX"] if refused else []), n
        assert CALLS == ([] if refused else ["items"]), n
    two = "query A { items(first: 2) { name } } query B { items(first: 30) { name child { name } } }"
    for name, refused in (("A", False), ("B", True), ("A", False)):
        result = await schema.execute(two, operation_name=name)
        assert _codes(result) == (["QUERY_TOO_COMPLEX"] if refused else []), name


async def test_over_the_token_limit_is_refused_even_when_cached_under_a_higher_one() -> None:
    query = "{ " + "__typename " * 40 + "}"  # over 40 tokens
    roomy = strawberry.Schema(query=Query, extensions=[gate(Limits(max_tokens=100))])
    assert (await _run(roomy, query)).errors is None  # parsed and cached under 100
    result = await _run(_schema(), query)
    assert result.data is None and _syntax_codes(result) == ["QUERY_TOO_COMPLEX"]


async def test_an_invalid_document_is_not_costed() -> None:
    result = await _run(_schema(), "query Q($n: Int!) { items(first: $n) { name nope } }", {"n": 10_000})
    assert _codes(result) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_invalid_documents_are_refused_without_suggestions() -> None:
    result = await _run(_schema(), "{ itemz(first: 1) { name } }")
    assert result.data is None and _codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in result.errors[0].message


async def test_an_empty_query_is_strawberrys_missing_query() -> None:
    with pytest.raises(MissingQueryError):
        await _schema().execute("")


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
        assert _syntax_codes(await _run(schema, "{ items(first: 1) { name }")) == ["GRAPHQL_PARSE_FAILED"]
    assert gate_module._cached_parse.cache_info().currsize == 1


# The gate in the schemas the gateway builds, with the real credit connector, policy and audit.

INTROSPECT = "{ __schema { queryType { name } } }"


async def test_the_gateway_and_subgraph_schemas_refuse_introspection_when_told(demo_dir: Path) -> None:
    connectors = {"credit": CreditConnector.from_config({}, demo_dir)}
    for introspection in (True, False):
        built = build_schema(connectors, Limits(), introspection=introspection)
        part = build_subgraph(connectors, "credit", Limits(), introspection=introspection).built
        for schema in (built.schema, part.schema):
            result = await schema.execute(INTROSPECT)
            assert (result.errors is None) is introspection, (introspection, result.errors)


async def test_an_operation_over_the_cost_limit_is_neither_decided_nor_audited(demo_dir: Path, tmp_path: Path) -> None:
    connector = CreditConnector.from_config({}, demo_dir)
    await connector.open()
    built = build_schema({"credit": connector}, Limits(max_cost=100))
    engine = StaticPolicyEngine(lambda _: {"allow": True, "filter": {}})
    audit = AuditTrail(f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}")
    await audit.open()
    runtime = built.runtime({"credit": connector}, engine, audit, {"credit": 5})
    principal = Principal("t", "market_supervision", frozenset({"staff"}), frozenset(), 4)
    query = "query Q($n: Int!) { creditRecords(first: $n) { nodes { id amount } } }"  # amount: level 2

    async def run(first: int) -> Any:
        ctx = RequestContext(runtime, principal, Purpose("market_supervision"), request_id="r")
        try:
            return await built.schema.execute(query, variable_values={"n": first}, context_value=ctx)
        finally:
            ctx.close()

    try:
        refused = await run(500)
        assert refused.data is None and _codes(refused) == ["QUERY_TOO_COMPLEX"]
        assert engine.inputs == [] and await audit.records() == []
        served = await run(3)  # the same operation under the limit is decided and audited
        assert served.errors is None and len(served.data["creditRecords"]["nodes"]) == 3
        assert engine.inputs and len(await audit.records()) == 1
    finally:
        await audit.aclose()
        await connector.aclose()
