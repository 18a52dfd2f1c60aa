"""How an operation's coordinates become decisions (``schema.policy.grouped``), shared between
requests, and the input documents built around them for each request."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from audit import AuditTrail
from connectors.credit import CreditConnector
from policies.cache import cache_key
from policies.engine import StaticPolicyEngine
from policies.principal import Principal, Purpose
from resolvers.context import RequestContext
from schema import policy
from schema.builder import build_schema
from schema.fieldmeta import FieldCatalog, FieldMeta
from schema.limits import Limits
from schema.operation import OperationSummary


def meta(coordinate: str, level: int = 1, resource: str | None = None, reads: tuple[str, ...] = ()) -> FieldMeta:
    type_name, field = coordinate.split(".")
    return FieldMeta(coordinate, "credit", resource or type_name, field, level, None, reads)


CATALOG = FieldCatalog(
    {
        m.coordinate: m
        for m in (
            meta("Query.creditRecords", resource="CreditRecord"),
            meta("CreditRecord.title"),
            meta("CreditRecord.amount", level=2),
            meta("CreditRecord.legalRepName", level=3, reads=("CreditRecord.legalRepIdNumber",)),
            meta("CreditRecord.legalRepIdNumber", level=3),
            meta("CreditRecord.enterprise", resource="Enterprise"),
            meta("Enterprise.name", level=1),
        )
    }
)
COORDINATES = ["Query.creditRecords", "CreditRecord.title", "CreditRecord.legalRepName", "PageInfo.endCursor"]


def test_coordinates_are_grouped_by_decision_with_resources_and_field_names() -> None:
    groups = policy.grouped(CATALOG, COORDINATES)
    key = ("credit", "CreditRecord")
    assert list(groups.metas) == [key]  # PageInfo is structural: no decision
    # What a resolver reads on the way (the ID number behind the name) is decided with it.
    assert [m.coordinate for m in groups.metas[key]] == [
        "Query.creditRecords",
        "CreditRecord.title",
        "CreditRecord.legalRepName",
        "CreditRecord.legalRepIdNumber",
    ]
    assert groups.resources[key] == {
        "connector": "credit",
        "type": "CreditRecord",
        "classification": 3,
        "fields": tuple({"coordinate": m.coordinate, "level": m.level, "pi": None} for m in groups.metas[key]),
    }
    assert groups.fields[key] == {"title", "legalRepName", "legalRepIdNumber"}  # not the root field


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """The coordinate lists ``groups_of`` is called for, from an empty groups cache."""
    calls: list[object] = []
    original = policy.groups_of

    def counting(catalog: FieldCatalog, coordinates: Any) -> Any:
        calls.append(coordinates)
        return original(catalog, coordinates)

    monkeypatch.setattr(policy, "groups_of", counting)
    policy._grouped.cache_clear()
    yield calls
    policy._grouped.cache_clear()


def test_groups_are_made_once_per_catalog_and_coordinates(counted: list[object]) -> None:
    first = policy.grouped(CATALOG, COORDINATES)
    assert policy.grouped(CATALOG, list(COORDINATES)) is first and len(counted) == 1
    # An equal catalog that is another object (another schema) gets its own entry.
    other = FieldCatalog(dict(CATALOG.by_coordinate))
    assert policy.grouped(other, COORDINATES) is not first and len(counted) == 2
    assert policy.grouped(CATALOG, COORDINATES[:2]) is not first and len(counted) == 3


def test_the_groups_cache_is_bounded_and_keeps_what_is_used(counted: list[object]) -> None:
    lists = [["Query.creditRecords"] * (n + 1) for n in range(policy.GROUPED_SIZE + 2)]
    kept = policy.grouped(CATALOG, lists[0])
    for coordinates in lists[1:]:
        assert policy.grouped(CATALOG, lists[0]) is kept  # used again: stays
        policy.grouped(CATALOG, coordinates)
    assert policy._grouped.cache_info().currsize == policy.GROUPED_SIZE
    assert len(counted) == len(lists)
    # The least recently used went: the second list is made again, the first is still there.
    policy.grouped(CATALOG, lists[1])
    assert len(counted) == len(lists) + 1
    assert policy.grouped(CATALOG, lists[0]) is kept and len(counted) == len(lists) + 1


def test_input_documents_and_their_cache_keys_are_as_built_per_decision() -> None:
    # The documents the engine and the decision cache see, written out as the gateway built them
    # one decision at a time before groups were shared.
    principal = Principal("alice", "market_supervision", frozenset({"staff"}), frozenset({"330203"}), 3)
    ctx = RequestContext(_runtime(), principal, Purpose("law_enforcement", "甬案-1"), request_id="r-1")
    summary = OperationSummary("query", "Q", list(COORDINATES), {"Query.creditRecords": [{"first": 5}]}, 3)
    docs = policy.input_docs(ctx, policy.grouped(CATALOG, COORDINATES), summary)
    [(key, doc)] = docs.items()
    expected = {
        "subject": principal.to_policy(),
        "action": "read",
        "purpose": "law_enforcement",
        "case_ref": "甬案-1",
        "resource": {
            "connector": "credit",
            "type": "CreditRecord",
            "classification": 3,
            "fields": [
                {"coordinate": c, "level": CATALOG.by_coordinate[c].level, "pi": None}
                for c in (
                    "Query.creditRecords",
                    "CreditRecord.title",
                    "CreditRecord.legalRepName",
                    "CreditRecord.legalRepIdNumber",
                )
            ],
        },
        "operation": {
            "type": "query",
            "name": "Q",
            "coordinates": COORDINATES,
            "args": {"Query.creditRecords": [{"first": 5}]},
            "depth": 3,
        },
        "context": doc["context"],
    }
    context = doc["context"]
    assert key == ("credit", "CreditRecord") and isinstance(context, dict)
    assert set(context) == {"now_ns", "today", "request_id"} and context["request_id"] == "r-1"
    assert orjson.dumps(doc) == orjson.dumps(expected)
    for with_args in (True, False):
        assert cache_key(doc, "rev", with_args=with_args) == cache_key(expected, "rev", with_args=with_args)


def _runtime() -> Any:
    """A runtime for building input documents only (nothing is opened or read)."""
    return build_schema({}, Limits()).runtime({}, StaticPolicyEngine(lambda _: {}), AuditTrail("sqlite://"), {})


async def test_each_request_gets_its_own_subject_purpose_and_arguments(demo_dir: Path, tmp_path: Path) -> None:
    # The groups and their resources are shared between requests; nothing of one request's
    # principal, purpose or arguments may reach another's input documents.
    connector = CreditConnector.from_config({}, demo_dir)
    await connector.open()
    built = build_schema({"credit": connector}, Limits())
    engine = StaticPolicyEngine(lambda doc: {"allow": True, "filter": {}})
    audit = AuditTrail(f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}")
    await audit.open()
    runtime = built.runtime({"credit": connector}, engine, audit, {"credit": 5})
    query = "query Q($n: Int!) { creditRecords(first: $n) { nodes { id title amount } } }"

    async def run(principal: Principal, purpose: Purpose, first: int) -> list[Any]:
        engine.inputs.clear()
        ctx = RequestContext(runtime, principal, purpose, request_id=principal.subject)
        try:
            result = await built.schema.execute(query, variable_values={"n": first}, context_value=ctx)
        finally:
            ctx.close()
        assert result.errors is None
        return list(engine.inputs)

    alice = Principal("alice", "market_supervision", frozenset({"staff"}), frozenset(), 4)
    bob = Principal("bob", "tax", frozenset({"district_officer"}), frozenset({"330203"}), 2)
    try:
        first = await run(alice, Purpose("market_supervision"), 2)
        shared = copy.deepcopy([d["resource"] for d in first])
        second = await run(bob, Purpose("law_enforcement", "甬案-7"), 3)
    finally:
        await audit.aclose()
        await connector.aclose()
    for docs, principal, purpose, n in ((first, alice, "market_supervision", 2), (second, bob, "law_enforcement", 3)):
        assert docs, "the engine was asked"
        for doc in docs:
            assert doc["subject"] == principal.to_policy() and doc["purpose"] == purpose
            assert doc["context"]["request_id"] == principal.subject
            assert doc["operation"]["args"] == {"Query.creditRecords": [{"first": n}]}
    assert second[0]["case_ref"] == "甬案-7" and first[0]["case_ref"] is None
    # The same resource documents, shared: the same objects on both requests, unchanged by either.
    assert all(a["resource"] is b["resource"] for a, b in zip(first, second, strict=True))
    assert [d["resource"] for d in second] == shared
