"""Differential suite: compiled list completion gives exactly graphql-core's data and errors.

Every query runs through two schemas built from the same connectors — compiled and generic —
against records that include every kind of surprise: nulls in non-null fields, values a
serialiser rejects, missing attributes, denied fields (exception values) in nullable and
non-null fields, masked values — and, on the link fields resolved in batches, parents with no
linked record, denied links and connector failures. Data must be equal and errors equal as sets
of (message, path, locations, extensions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit import AuditTrail
from connectors.base import FetchRequest, Record, SchemaContribution
from connectors.credit import CreditConnector
from connectors.errors import ConnectorUnavailable
from connectors.sql import encode_cursor
from connectors.testing import FakeConnector
from policies.engine import StaticPolicyEngine
from policies.principal import Principal, Purpose
from resolvers.context import RequestContext, Runtime
from schema.builder import BuiltSchema, build_schema
from schema.execution import FALLBACKS, CompiledExecutionContext
from schema.limits import Limits

# Two enterprises with credit profiles, one without a profile, one unknown to the platform.
USCCS = ["91330203MA2C4CE03N", "91330205MA2AFYKX7C", "91330206MA2GT0RX7Q", "91330212MA2H2BKB0C"]


def record(i: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": i, "uscc": USCCS[i % 4], "kind": "BLACK_LIST" if i % 3 else "RED_LIST", "title": f"t{i}",
        "content": f"c{i}", "authority": "宁波市市场监督管理局", "decision_date": dt.date(2025, 1, 1 + i % 28),
        "publicity_ends_on": dt.date(2027, 1, 1), "district_code": "330203", "decision_number": f"n{i}",
        "amount": Decimal("100.50") if i % 2 else None, "legal_rep_name": "王小明",
        "legal_rep_id_number": "330203198807151234", "internal_note": None,
    }  # fmt: skip
    # Surprises, one kind per record index.
    if i == 3:
        row["title"] = None  # null in a non-null field
    if i == 5:
        row["kind"] = "NOT_A_KIND"  # the enum rejects it
    if i == 7:
        row["decision_date"] = "yesterday"  # the Date serialiser rejects it
    if i == 9:
        del row["content"]  # a missing attribute
    if i == 11:
        row["amount"] = "not a number"  # Decimal serialiser on a nullable field
    # Values of String fields that are not exactly a str: the serialiser converts them (the
    # compiled path copies only exact str values without calling it).
    if i == 13:
        row["content"] = 12345
    if i == 15:
        row["decision_number"] = _Text("n15-subclass")
    if i == 17:
        row["authority"] = True
    if i == 19:
        row["decision_date"] = dt.datetime(2025, 1, 19, 8, 30)  # a datetime in a Date field
    return row


class _Text(str):
    """A str subclass: serialize_string returns it as it is, a plain copy must not decide that."""


class FakeCredit(FakeConnector):
    """The credit platform's schema over in-memory records (keys per entity)."""

    KEYS: Mapping[str, str] = {"Enterprise": "uscc", "CreditProfile": "uscc", "CreditRecord": "id"}
    #: Entities whose fetches fail (the backend is down for them).
    failing: frozenset[str] = frozenset()

    def __init__(self, records: Mapping[str, Sequence[Record]]) -> None:
        super().__init__(records)
        self.fetches: dict[str, int] = {}  # backend calls per entity

    def schema(self) -> SchemaContribution:
        return CreditConnector.schema(self)  # type: ignore[arg-type]

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        self.fetches[request.entity] = self.fetches.get(request.entity, 0) + 1
        if request.entity in self.failing:
            raise ConnectorUnavailable(f"{request.entity} is down")
        by_key = {str(r[self.KEYS[request.entity]]): r for r in self.records.get(request.entity, [])}
        return [by_key.get(k) for k in request.keys]

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        self.fetches[request.entity] = self.fetches.get(request.entity, 0) + 1
        if request.entity in self.failing:
            raise ConnectorUnavailable(f"{request.entity} is down")
        return await super().fetch_related(request)


def decision(doc: Mapping[str, Any]) -> object:
    fields: dict[str, object] = {
        "CreditRecord.legalRepIdNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4},
        "CreditRecord.legalRepName": {"action": "deny"},
        "CreditRecord.internalNote": {"action": "allow"},
    }
    if doc["subject"]["clearance"] < 2:
        fields["CreditRecord.decisionNumber"] = {"action": "deny"}  # nullable: stays on the fast path
        fields["CreditRecord.authority"] = {"action": "deny"}  # non-null: null propagates to the item
    if doc["subject"]["clearance"] == 2:
        fields["CreditProfile.records"] = {"action": "deny"}  # a non-null batch link: the profile is null
    if doc["subject"]["clearance"] == 3:
        fields["CreditRecord.enterprise"] = {"action": "deny"}  # a nullable batch link
    return {"allow": True, "filter": {}, "fields": fields}


def build_both(records: list[dict[str, Any]], audit_dir: Any) -> tuple[BuiltSchema, BuiltSchema, Runtime]:
    """Compiled and generic schemas over one FakeCredit holding ``records``."""
    data = {
        "CreditRecord": records,
        "Enterprise": [{"uscc": u, "name": f"企业{n}", "district_code": "330203"} for n, u in enumerate(USCCS[:3])],
        "CreditProfile": [
            {"uscc": u, "rating": "A", "score": 900, "assessed_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
            for u in USCCS[:2]
        ],
    }
    connector = FakeCredit(data)
    compiled = build_schema({"credit": connector}, Limits(max_cost=10**9), compiled=True)
    generic = build_schema({"credit": connector}, Limits(max_cost=10**9), compiled=False)
    audit = AuditTrail(f"sqlite+aiosqlite:///{audit_dir / 'a.sqlite'}")
    runtime = compiled.runtime({"credit": connector}, StaticPolicyEngine(decision), audit, {"credit": 5})
    return compiled, generic, runtime


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltSchema, BuiltSchema, Runtime]:
    return build_both([record(i) for i in range(24)], tmp_path_factory.mktemp("audit"))


async def run_both(
    schemas: tuple[BuiltSchema, BuiltSchema, Runtime], query: str, variables: dict[str, Any], clearance: int
) -> tuple[Any, Any]:
    compiled, generic, runtime = schemas
    await runtime.audit.open()
    out = []
    for built in (compiled, generic):
        principal = Principal("t", "market_supervision", frozenset({"staff"}), frozenset(), clearance)
        ctx = RequestContext(runtime=runtime, principal=principal, purpose=Purpose("law_enforcement"), request_id="r")
        result = await built.schema.execute(query, variable_values=variables, context_value=ctx)
        errors = sorted(
            (e.message, tuple(map(str, e.path or ())), tuple((loc.line, loc.column) for loc in e.locations or ()),
             tuple(sorted((k, str(v)) for k, v in (e.extensions or {}).items() if k != "errorId")))
            for e in result.errors or []
        )  # fmt: skip
        out.append((result.data, errors))
    await runtime.audit.aclose()
    return out[0], out[1]


REFERENCE = [
    "{ creditRecords(first: 24) { nodes { id kind title content authority decisionDate publicityEndsOn amount "
    "decisionNumber legalRepName legalRepIdNumber internalNote __typename } pageInfo { hasNextPage endCursor } } }",
    "{ creditRecords(first: 24) { edges { cursor node { id title enterprise { uscc name credit { rating score "
    "records { id kind title amount } } } } } } }",
    "query($s: Boolean!) { creditRecords(first: 24) { nodes { a: id b: title ...F @skip(if: $s) "
    "... on CreditRecord { kind @include(if: $s) amount } } } } fragment F on CreditRecord { decisionDate authority }",
    # A batch link whose values are lists, with surprises in the items of several parents' lists.
    "query($s: Boolean!) { creditRecords(first: 24) { nodes { id enterprise { uscc credit { rating "
    "records { id kind @skip(if: $s) content decisionNumber decisionDate amount } } } } } }",
]


# A root field's object (a dossier): leaves and batch links, completed by its plan.
ROOT = (
    'query($s: Boolean!) {{ enterprise(uscc: "{u}") {{ uscc name districtCode __typename n: name '
    "credit {{ rating score assessedAt @skip(if: $s) records {{ id kind title content authority decisionDate "
    "amount decisionNumber legalRepName legalRepIdNumber internalNote enterprise {{ uscc }} }} }} }} }}"
)
# Each enterprise's own case: one with surprises in its records, one without a profile, one the
# platform does not know, and two aliased side by side.
REFERENCE += [ROOT.format(u=u) for u in USCCS] + [
    "query($s: Boolean!) { "
    + " ".join(
        f'e{n}: enterprise(uscc: "{u}") {{ uscc name @include(if: $s) credit {{ rating records {{ id title }} }} }}'
        for n, u in enumerate(USCCS)
    )
    + " }"
]


@pytest.mark.parametrize("query", REFERENCE)
@pytest.mark.parametrize("clearance", [1, 2, 3, 4])
async def test_reference_queries_are_identical(schemas: Any, query: str, clearance: int) -> None:
    for skip in (True, False):
        compiled, generic = await run_both(schemas, query, {"s": skip}, clearance)
        assert compiled == generic


# Only fields every record can fill: no surprise nulls the whole list and hides the link errors.
LINKS = "{ creditRecords(first: 24) { nodes { id enterprise { uscc name credit { rating records { id amount } } } } } }"


ROOT_LINKS = f'{{ enterprise(uscc: "{USCCS[0]}") {{ uscc credit {{ rating records {{ id amount }} }} }} }}'


@pytest.mark.parametrize("query", [LINKS, ROOT_LINKS], ids=["list", "root"])
@pytest.mark.parametrize("down", ["Enterprise", "CreditProfile", "CreditRecord"])
async def test_failing_batch_links_are_identical(schemas: Any, down: str, query: str) -> None:
    connector = schemas[2].connectors["credit"]
    connector.failing = frozenset({down})
    try:
        compiled, generic = await run_both(schemas, query, {}, 4)
    finally:
        connector.failing = frozenset()
    assert compiled == generic
    assert any("CONNECTOR_UNAVAILABLE" in str(e[3]) for e in compiled[1])


async def test_a_failed_batch_link_is_reported_not_raised_once_per_parent(
    schemas: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every parent's ``enterprise`` fails with one shared error object: each parent's error is
    reported with the traceback the error came with, not raised again (which adds frames to the
    shared object every time, 24 raises deep by the last parent)."""
    compiled, _, runtime = schemas
    depths: list[int] = []
    handle = CompiledExecutionContext.handle_field_error

    def recording(self: CompiledExecutionContext, raw_error: Exception, *args: Any) -> None:
        depth, tb = 0, raw_error.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        depths.append(depth)
        handle(self, raw_error, *args)

    monkeypatch.setattr(CompiledExecutionContext, "handle_field_error", recording)
    connector = runtime.connectors["credit"]
    connector.failing = frozenset({"Enterprise"})
    await runtime.audit.open()
    try:
        principal = Principal("t", "market_supervision", frozenset({"staff"}), frozenset(), 4)
        ctx = RequestContext(runtime=runtime, principal=principal, purpose=Purpose("law_enforcement"), request_id="r")
        result = await compiled.schema.execute(LINKS, context_value=ctx)
    finally:
        connector.failing = frozenset()
        await runtime.audit.aclose()
    assert len(result.errors or []) == 24 and len(depths) == 24
    assert depths == [depths[0]] * 24


@pytest.fixture
def batch_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``field:parents`` of every batch field the compiled executor resolves, in order."""
    calls: list[str] = []
    run_batch = CompiledExecutionContext._run_batch

    def counting(self: CompiledExecutionContext, step: Any, parents: list[Any], *args: Any) -> Any:
        calls.append(f"{step.key}:{len(parents)}")
        return run_batch(self, step, parents, *args)

    monkeypatch.setattr(CompiledExecutionContext, "_run_batch", counting)
    return calls


async def test_link_fields_of_list_items_resolve_in_batches(schemas: Any, batch_calls: list[str]) -> None:
    """One batch call per link field and list, not one resolver call per item."""
    calls = batch_calls
    compiled, generic = await run_both(schemas, LINKS, {}, 4)
    assert compiled == generic
    assert compiled[0]["creditRecords"]["nodes"][0]["enterprise"]["credit"]["records"]
    # 24 records -> their enterprises (18 known) -> 3 enterprises' credit -> 2 profiles' records.
    assert calls == ["enterprise:24", "credit:18", "records:12"]


async def test_a_root_objects_links_resolve_by_their_batch_resolvers(schemas: Any, batch_calls: list[str]) -> None:
    """A dossier's links are batch links of one parent, not strawberry resolver calls; objects
    below the root stay graphql-core's (their timing keeps other paths' loads in one batch)."""
    calls = batch_calls
    compiled, generic = await run_both(schemas, ROOT_LINKS, {}, 4)
    assert compiled == generic and compiled[0]["enterprise"]["credit"]["records"]
    assert calls == ["credit:1", "records:1"]
    calls.clear()
    query = "{ creditRecords(first: 1) { pageInfo { hasNextPage } nodes { id } } }"  # a connection: generic steps
    compiled, generic = await run_both(schemas, query, {}, 4)
    assert compiled == generic and calls == []


@pytest.fixture
def item_lists(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``type:items`` of every list the compiled executor completes through ``_complete_items``."""
    calls: list[str] = []
    complete_items = CompiledExecutionContext._complete_items

    def counting(self: CompiledExecutionContext, plan: Any, *args: Any) -> Any:
        calls.append(f"{plan.type_name}:{len(args[-2])}")
        return complete_items(self, plan, *args)

    monkeypatch.setattr(CompiledExecutionContext, "_complete_items", counting)
    return calls


async def test_lists_of_leaves_under_a_batch_link_are_filled_in_one_pass(schemas: Any, item_lists: list[str]) -> None:
    """Each parent's list of leaf-only items is filled by the batch, not completed one list at a
    time; a list holding a value the filler leaves to the general loop is completed that way."""
    await run_both(schemas, LINKS, {}, 4)  # the filler of this shape is compiled on its second use
    item_lists.clear()
    compiled, generic = await run_both(schemas, LINKS, {}, 4)
    assert compiled == generic and compiled[0]["creditRecords"]["nodes"][0]["enterprise"]["credit"]["records"]
    # The page, the enterprises, their profiles: the profiles' record lists are not among them.
    assert [c.split(":")[0] for c in item_lists] == ["CreditRecord", "Enterprise", "CreditProfile"]
    # Record 9 has no content: the six parents holding the second profile (its records are 1, 5,
    # 9, ...) have their lists completed in general; the six holding the first are filled.
    surprising = LINKS.replace("records { id amount }", "records { id content }")
    await run_both(schemas, surprising, {}, 4)
    item_lists.clear()
    compiled, generic = await run_both(schemas, surprising, {}, 4)
    assert compiled == generic
    assert item_lists == ["CreditRecord:24", "Enterprise:24", "CreditProfile:18"] + ["CreditRecord:6"] * 6


async def test_clean_lists_complete_without_fallbacks(schemas: Any) -> None:
    before = sum(s.value for m in FALLBACKS.collect() for s in m.samples if s.name.endswith("_total"))
    query = "{ creditRecords(first: 2) { nodes { id kind title amount } } }"  # records 0 and 1 are clean
    compiled, generic = await run_both(schemas, query, {}, 4)
    assert compiled == generic
    after = sum(s.value for m in FALLBACKS.collect() for s in m.samples if s.name.endswith("_total"))
    assert after == before


FIELDS = ["id", "uscc", "kind", "title", "content", "authority", "decisionDate", "publicityEndsOn", "districtCode",
          "decisionNumber", "amount", "legalRepName", "legalRepIdNumber", "internalNote", "__typename",
          "enterprise { uscc name }"]  # fmt: skip


@st.composite
def selections(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=8))
    parts = []
    for n, field in enumerate(chosen):
        alias = f"f{n}: " if draw(st.booleans()) else ""
        directive = draw(st.sampled_from(["", " @include(if: $a)", " @skip(if: $b)"]))
        if " " in field:  # a sub-selection keeps its braces after the directive
            name, rest = field.split(" ", 1)
            parts.append(f"{alias}{name}{directive} {rest}")
        else:
            parts.append(f"{alias}{field}{directive}")
    body = " ".join(parts)
    wrap = draw(st.sampled_from(["plain", "fragment", "inline"]))
    if wrap == "fragment":
        query = (
            "query($a: Boolean!, $b: Boolean!) { creditRecords(first: 24) { nodes { ...R } } } "
            f"fragment R on CreditRecord {{ {body} }}"
        )
    elif wrap == "inline":
        query = (
            "query($a: Boolean!, $b: Boolean!) { creditRecords(first: 24) { nodes { ... on CreditRecord { "
            f"{body} }} }} }} }}"
        )
    else:
        query = f"query($a: Boolean!, $b: Boolean!) {{ creditRecords(first: 24) {{ nodes {{ {body} }} }} }}"
    return query, {"a": draw(st.booleans()), "b": draw(st.booleans())}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=selections(), clearance=st.sampled_from([1, 2, 3, 4]))
async def test_random_selections_are_identical(schemas: Any, case: tuple[str, dict[str, Any]], clearance: int) -> None:
    query, variables = case
    compiled, generic = await run_both(schemas, query, variables, clearance)
    assert compiled == generic, query


# Two root lists of different shapes whose records belong to different enterprises (ids sort as
# strings: the first page is 0, 1, 10-19, the second the rest), links three levels deep: each
# level's loads must still meet in one backend call, as with graphql-core.
SECOND_PAGE = encode_cursor("19")
NODES = "nodes { enterprise { credit { records { id } } } }"
EDGES = "edges { node { enterprise { credit { records { id } } } } }"
PAGE_A, PAGE_B = "a: creditRecords(first: 12)", f'b: creditRecords(first: 12, after: "{SECOND_PAGE}")'
DISJOINT = [
    f"{{ {PAGE_A} {{ {NODES} }} {PAGE_B} {{ {EDGES} }} }}",
    f"{{ {PAGE_A} {{ {NODES} }} {PAGE_B} {{ {NODES} }} }}",
    LINKS,
    # Root objects side by side: each level's loads meet across them too.
    "{ "
    + " ".join(f'e{n}: enterprise(uscc: "{u}") {{ credit {{ records {{ id }} }} }}' for n, u in enumerate(USCCS))
    + " }",
]


@pytest.mark.parametrize("query", DISJOINT)
async def test_batches_cost_no_more_backend_calls_than_graphql_core(
    tmp_path_factory: pytest.TempPathFactory, query: str
) -> None:
    first_page = {str(i) for i in (0, 1, *range(10, 20))}
    records = [{**record(i), "uscc": USCCS[i % 2 if str(i) in first_page else 2 + i % 2]} for i in range(24)]
    compiled, generic, runtime = build_both(records, tmp_path_factory.mktemp("audit"))
    connector = runtime.connectors["credit"]
    assert isinstance(connector, FakeCredit)
    calls = []
    for built in (compiled, generic):
        connector.fetches = {}
        results = await run_both((built, built, runtime), query, {}, 4)
        assert results[0] == results[1]
        calls.append(dict(connector.fetches))
    assert calls[0] == calls[1]
    assert calls[0] and all(count == 2 for count in calls[0].values()), calls[0]  # one per level, run twice
