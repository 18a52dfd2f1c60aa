"""``CityGraphSchema.execute`` runs a request's operation itself (``schema.direct``): the same
results, errors, exceptions, decisions and audit records as strawberry's ``execute`` through the
gate and the policy extension, on the demo data under the repository's Rego policies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import strawberry
from graphql import DirectiveLocation
from strawberry.directive import DirectiveValue
from strawberry.schema.config import StrawberryConfig
from strawberry.types.graphql import OperationType

from audit import AuditEntry, AuditTrail, AuditWriteError
from connectors.credit import CreditConnector
from connectors.license import LicenseConnector
from edge.graphql_http import _format_errors
from policies.cache import CachingEngine
from policies.decision import Decision
from policies.embedded import EmbeddedEngine
from policies.engine import EngineStatus
from policies.principal import Principal, Purpose
from resolvers.context import RequestContext, Runtime
from schema.builder import BuiltSchema, CityGraphSchema, build_schema
from schema.limits import Limits

# One schema, engine and audit trail for the module's tests, so one event loop for all of them.
pytestmark = pytest.mark.asyncio(loop_scope="module")

REGO_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
LIMITS = Limits(max_depth=6, max_cost=400, max_tokens=300)
OFFICER = Principal("o", "market_supervision", frozenset({"district_officer"}), frozenset({"330203"}), 3)
STAFF = Principal("s", "market_supervision", frozenset({"staff"}), frozenset(), 4)
PUBLIC = Principal("p", "public", frozenset(), frozenset(), 0)

DOSSIER = """query Dossier($u: USCC!) { enterprise(uscc: $u) { uscc name status
  legalRepresentative { name idNumber } licenses { number type status validUntil }
  credit { rating score records { id kind title amount legalRepIdNumber } } } }"""
PAGE = """query Page($n: Int!, $after: String) { enterprises(first: $n, after: $after) {
  nodes { uscc name legalRepresentative { name } licenses { type } credit { rating records { kind } } }
  pageInfo { endCursor hasNextPage } } }"""
RECORDS = "{ creditRecords(first: 5) { nodes { id districtCode amount legalRepIdNumber } } }"

#: (name, query, variables, operation name, allowed operation types): what both paths are given.
CASES: list[tuple[str, str, dict[str, Any] | None, str | None, set[OperationType] | None]] = [
    ("dossier", DOSSIER, {"u": "USCC"}, None, None),
    ("unknown enterprise", DOSSIER, {"u": "91330203MA2GXXXX0X"}, None, None),
    ("page", PAGE, {"n": 3}, "Page", None),
    ("records", RECORDS, None, None, None),
    ("aliases and typename", "{ a: gatewayVersion b: gatewayVersion __typename }", None, None, None),
    ("syntax error", "{ enterprise(", None, None, None),
    ("over the token limit", "{ " + "gatewayVersion " * 400 + "}", None, None, None),
    ("unknown field", "{ nothing }", None, None, None),
    ("too deep", "{ enterprises(first: 1) { nodes { credit { records { kind } } } } }", None, None, None),
    ("too costly", PAGE, {"n": 300}, None, None),
    ("bad variable", PAGE, {"n": "three"}, None, None),
    ("bad scalar", DOSSIER, {"u": "not a uscc"}, None, None),
    ("introspection", "{ __schema { queryType { name } } }", None, None, None),
    ("a named operation of two", "query A { gatewayVersion } query B { __typename }", None, "B", None),
    ("the first of two operations", "query A { gatewayVersion } query B { __typename }", None, None, None),
    (
        "the first of two, costly",
        "query A($n: Int!) { enterprises(first: $n) { nodes { uscc } } } query B { __typename }",
        {"n": 900},
        None,
        None,
    ),
    ("an anonymous operation and a named one", "{ gatewayVersion } query B { __typename }", None, None, None),
    ("no such operation", "query A { gatewayVersion }", None, "Z", None),
    ("a query where none is allowed", "{ gatewayVersion }", None, None, {OperationType.MUTATION}),
    ("a mutation where it is not allowed", "mutation { gatewayVersion }", None, None, {OperationType.QUERY}),
]


@dataclass
class Setup:
    built: BuiltSchema
    runtime: Runtime
    audit: AuditTrail
    uscc: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def setup(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    connectors: dict[str, Any] = {
        "credit": CreditConnector.from_config({}, demo_dir),
        "license": LicenseConnector.from_config({}, demo_dir),
    }
    for connector in connectors.values():
        await connector.open()
    embedded = EmbeddedEngine(REGO_DIR)
    assert embedded.load().ok
    engine = CachingEngine(embedded)
    audit = AuditTrail(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('direct') / 'audit.sqlite'}")
    await audit.open()
    built = build_schema(connectors, LIMITS)
    runtime = built.runtime(connectors, engine, audit, dict.fromkeys(connectors, 5.0))
    page = await _run(built, runtime, STAFF, "{ enterprises(first: 1) { nodes { uscc } } }", None, None, None)
    try:
        yield Setup(built, runtime, audit, page["data"]["enterprises"]["nodes"][0]["uscc"])
    finally:
        await audit.aclose()
        await engine.aclose()
        for connector in connectors.values():
            await connector.aclose()


async def _run(
    built: BuiltSchema,
    runtime: Runtime,
    principal: Principal,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    allowed: Iterable[OperationType] | None,
    *,
    strawberrys: bool = False,
) -> dict[str, Any]:
    """What one path answers: its result's type, data, errors (as returned, and as the HTTP layer
    formats them) and extensions, or the exception it raised."""
    ctx = RequestContext(runtime, principal, Purpose("market_supervision"), request_id="r")
    execute = strawberry.Schema.execute if strawberrys else type(built.schema).execute
    try:
        result = await execute(built.schema, query, variables, ctx, None, operation_name, allowed)
    except Exception as exc:
        return {"raised": (type(exc), str(exc))}
    finally:
        ctx.close()
    # As the HTTP layer formats them: it codes the errors raised before the gate resumes.
    formatted = _format_errors(result.errors or [], chinese=False)
    for error in formatted:
        (error.get("extensions") or {}).pop("errorId", None)  # a fresh id per unexpected error
    return {
        "type": type(result),
        "data": result.data,
        "errors": None if result.errors is None else [e.formatted for e in result.errors],
        "formatted": formatted,
        "extensions": result.extensions,
    }


def _variables(setup: Setup, variables: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: setup.uscc if v == "USCC" else v for k, v in variables.items()} if variables else variables


@pytest.mark.parametrize(("name", "query", "variables", "operation_name", "allowed"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("principal", [STAFF, OFFICER, PUBLIC], ids=["staff", "officer", "public"])
async def test_both_paths_answer_the_same(
    setup: Setup,
    principal: Principal,
    name: str,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    allowed: set[OperationType] | None,
) -> None:
    variables = _variables(setup, variables)
    answers: dict[bool, dict[str, Any]] = {}
    audited: dict[bool, list[AuditEntry]] = {}
    # Either path may go first: the caches the first one fills (parse, validation, cost, summary,
    # decisions) are the other's to read, so neither always reads what the other computed.
    for strawberrys in (False, True) if len(query) % 2 else (True, False):
        before = len(await setup.audit.records(limit=10_000))
        answers[strawberrys] = await _run(
            setup.built, setup.runtime, principal, query, variables, operation_name, allowed, strawberrys=strawberrys
        )
        audited[strawberrys] = [r.entry for r in (await setup.audit.records(limit=10_000))[before:]]
    assert answers[False] == answers[True]
    assert audited[False] == audited[True]  # the same audit entries (or none) on both paths


async def test_the_reference_answers_are_what_the_policies_say(setup: Setup) -> None:
    # The comparison above is only worth something if the cases reach policy: masked, denied and
    # filtered values come back from the direct path, and every non-public read is audited.
    dossier = await _run(setup.built, setup.runtime, STAFF, DOSSIER, {"u": setup.uscc}, None, None)
    assert "*" in dossier["data"]["enterprise"]["legalRepresentative"]["idNumber"]  # police only
    records = await _run(setup.built, setup.runtime, OFFICER, RECORDS, None, None, None)
    assert {r["districtCode"] for r in records["data"]["creditRecords"]["nodes"]} == {"330203"}
    last = (await setup.audit.records(limit=10_000))[-1]
    assert last.entry.subject == "o" and "CreditRecord.amount" in last.entry.coordinates
    public = await _run(setup.built, setup.runtime, PUBLIC, RECORDS, None, None, None)
    assert public["data"] is None and [e["extensions"]["code"] for e in public["errors"]] == ["FORBIDDEN"]


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The schemas strawberry made extensions for (it does once per operation it runs)."""
    schemas: list[object] = []
    original = strawberry.Schema.get_extensions

    def counted(schema: strawberry.Schema, sync: bool = False) -> Any:
        schemas.append(schema)
        return original(schema, sync)

    monkeypatch.setattr(strawberry.Schema, "get_extensions", counted)
    return schemas


async def test_the_direct_path_makes_no_strawberry_extension(setup: Setup, made: list[object]) -> None:
    await _run(setup.built, setup.runtime, STAFF, DOSSIER, {"u": setup.uscc}, None, None)
    assert made == []
    await _run(setup.built, setup.runtime, STAFF, DOSSIER, {"u": setup.uscc}, None, None, strawberrys=True)
    assert made == [setup.built.schema]  # the comparison's other side does go through them


async def test_a_failed_audit_withholds_the_data_on_both_paths(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(entry: object) -> None:
        raise AuditWriteError("the audit database is gone")

    monkeypatch.setattr(setup.audit, "append", refuse)
    for strawberrys in (False, True):
        answer = await _run(
            setup.built, setup.runtime, STAFF, DOSSIER, {"u": setup.uscc}, None, None, strawberrys=strawberrys
        )
        assert answer["data"] is None
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["AUDIT_UNAVAILABLE"]


class _Broken:
    """An engine that breaks its contract (deny on failure, never raise): every decision raises.
    The request must not return governed data."""

    async def decide(self, input_doc: Any) -> Decision:
        raise RuntimeError("the engine fell over")

    def status(self) -> EngineStatus:
        raise RuntimeError("the engine fell over")

    async def aclose(self) -> None:
        return None


async def test_an_engine_that_raises_ends_the_operation_the_same_way(setup: Setup) -> None:
    runtime = Runtime(**{**{f: getattr(setup.runtime, f) for f in Runtime.__slots__}, "engine": _Broken()})
    answers = [
        await _run(setup.built, runtime, STAFF, DOSSIER, {"u": setup.uscc}, None, None, strawberrys=s)
        for s in (False, True)
    ]
    assert answers[0] == answers[1]
    assert answers[0]["data"] is None and len(answers[0]["errors"]) == 1


@strawberry.type
class _Query:
    @strawberry.field
    def greeting(self) -> str:
        return "hello"


@strawberry.directive(locations=[DirectiveLocation.FIELD])
def shout(value: DirectiveValue[str]) -> str:
    return value.upper()


@pytest.mark.parametrize(
    ("options", "direct"),
    [
        ({}, True),
        ({"directives": [shout]}, False),  # strawberry's DirectivesExtension applies them
        ({"config": StrawberryConfig(enable_experimental_incremental_execution=True)}, False),
    ],
    ids=["plain", "strawberry directives", "incremental delivery"],
)
async def test_what_the_direct_path_does_not_do_goes_through_strawberry(
    setup: Setup, made: list[object], options: dict[str, Any], direct: bool
) -> None:
    schema = CityGraphSchema(limits=LIMITS, query=_Query, **options)
    ctx = RequestContext(setup.runtime, STAFF, Purpose("market_supervision"), request_id="r")
    query = "{ greeting @shout }" if "directives" in options else "{ greeting }"
    try:
        result = await schema.execute(query, context_value=ctx)
    finally:
        ctx.close()
    assert result.errors is None
    assert result.data == {"greeting": "HELLO" if "directives" in options else "hello"}
    assert made == ([] if direct else [schema])
    # Without a request context (strawberry's own tools, tests) strawberry's path runs too.
    assert (await schema.execute("{ greeting }")).data == {"greeting": "hello"} and made[-1] is schema
