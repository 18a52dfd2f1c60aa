"""The decision cache: keyed by everything a decision depends on, dropped on a new revision."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from gateway import create_app
from policies.cache import CachingEngine
from policies.decision import Decision
from policies.engine import StaticPolicyEngine
from tests.conftest import TokenFactory, make_settings

BASE = {
    "subject": {"id": "a", "department": "x", "roles": [], "districts": ["330203"], "clearance": 2},
    "purpose": None,
    "resource": {"connector": "credit", "type": "CreditRecord"},
    "context": {"today": "2026-11-27", "now_ns": 1, "request_id": "r1"},
}


def answer(doc: Mapping[str, object]) -> object:
    districts = doc["subject"]["districts"]  # type: ignore[index]
    return {"allow": True, "filter": {"type": "field", "field": "t.d", "operator": "in", "value": districts}}


async def test_same_input_other_request_is_a_hit() -> None:
    inner = StaticPolicyEngine(answer)
    engine = CachingEngine(inner)
    await engine.decide(BASE)
    await engine.decide({**BASE, "context": {"today": "2026-11-27", "now_ns": 2, "request_id": "r2"}})
    assert len(inner.inputs) == 1 and engine.hits == 1


async def test_another_principal_never_gets_a_cached_decision() -> None:
    inner = StaticPolicyEngine(answer)
    engine = CachingEngine(inner)
    mine = await engine.decide(BASE)
    other = await engine.decide({**BASE, "subject": {**BASE["subject"], "districts": ["330212"]}})  # type: ignore[dict-item]
    assert mine.filter != other.filter and len(inner.inputs) == 2


async def test_purpose_day_and_revision_are_part_of_the_key() -> None:
    inner = StaticPolicyEngine(answer, revision="r1")
    engine = CachingEngine(inner)
    await engine.decide(BASE)
    await engine.decide({**BASE, "purpose": "law_enforcement"})
    await engine.decide({**BASE, "context": {"today": "2026-11-28", "now_ns": 1, "request_id": "r1"}})
    inner._revision = "r2"
    await engine.decide(BASE)
    assert len(inner.inputs) == 4 and engine.hits == 0


async def test_engine_failures_are_not_cached() -> None:
    calls = []

    def flaky(doc: Mapping[str, object]) -> object:
        calls.append(doc)
        if len(calls) == 1:
            raise RuntimeError("down")
        return answer(doc)

    engine = CachingEngine(StaticPolicyEngine(flaky))
    assert (await engine.decide(BASE)).code == "POLICY_UNAVAILABLE"
    assert (await engine.decide(BASE)).allow is True


async def test_entries_expire() -> None:
    inner = StaticPolicyEngine(answer)
    engine = CachingEngine(inner, ttl_s=0.0)
    await engine.decide(BASE)
    await engine.decide(BASE)
    assert len(inner.inputs) == 2


class ArgsBlindEngine(StaticPolicyEngine):
    reads_operation_args = False


async def test_arguments_are_left_out_only_when_policies_cannot_read_them() -> None:
    a = {**BASE, "operation": {"coordinates": ["Query.enterprise"], "args": {"Query.enterprise": [{"uscc": "A"}]}}}
    b = {**BASE, "operation": {"coordinates": ["Query.enterprise"], "args": {"Query.enterprise": [{"uscc": "B"}]}}}
    reading = StaticPolicyEngine(answer)
    cached = CachingEngine(reading)
    await cached.decide(a)
    await cached.decide(b)
    assert len(reading.inputs) == 2
    blind = ArgsBlindEngine(answer)
    cached = CachingEngine(blind)
    await cached.decide(a)
    await cached.decide(b)
    assert len(blind.inputs) == 1


def test_the_city_policies_do_not_read_arguments() -> None:
    from pathlib import Path

    from policies.embedded import EmbeddedEngine

    engine = EmbeddedEngine(Path(__file__).resolve().parent.parent.parent / "policies" / "rego")
    assert engine.reads_operation_args is True  # nothing loaded yet: assume it does
    assert engine.load().ok
    assert engine.reads_operation_args is False


def _changed(path: str, value: object) -> dict[str, object]:
    """BASE with the value at ``path`` (dotted) replaced."""
    head, _, leaf = path.rpartition(".")
    doc: dict[str, object] = {**BASE, "operation": {"coordinates": ["Query.creditRecords"], "name": "Q"}}
    if not head:
        doc[leaf] = value
        return doc
    inner = dict(doc[head])  # type: ignore[call-overload]
    inner[leaf] = value
    doc[head] = inner
    return doc


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("subject.id", "b"),
        ("subject.department", "y"),
        ("subject.roles", ["district_officer"]),
        ("subject.districts", ["330212"]),
        ("subject.clearance", 3),
        ("subject.issuer", "another-idp"),
        ("subject.authenticated", False),
        ("purpose", "law_enforcement"),
        ("case_ref", "CASE-9"),
        ("resource.fields", [{"coordinate": "CreditRecord.legalRepIdNumber", "level": 3, "pi": True}]),
        ("operation.coordinates", ["Query.creditRecords", "CreditRecord.legalRepIdNumber"]),
    ],
)
async def test_every_claim_and_request_attribute_is_part_of_the_key(path: str, value: object) -> None:
    # An answer that names its caller: a shared entry would hand one caller another's decision.
    def echo(doc: Mapping[str, object]) -> object:
        return {"allow": True, "filter": {}, "reasons": [orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()]}

    inner = StaticPolicyEngine(echo)
    engine = CachingEngine(inner)
    mine = _changed("case_ref", None)
    theirs = _changed(path, value)
    first, second = await engine.decide(mine), await engine.decide(theirs)
    assert len(inner.inputs) == 2 and engine.hits == 0
    assert await engine.decide(mine) == first and await engine.decide(theirs) == second and engine.hits == 2


class ReloadingEngine(StaticPolicyEngine):
    """Swaps to a new revision while deciding, as a hot reload from a worker thread may."""

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        decision = await super().decide(input_doc)
        self._revision = f"{self._revision}+1"
        return decision


async def test_a_decision_made_across_a_reload_is_not_cached() -> None:
    inner = ReloadingEngine(answer, revision="r1")
    engine = CachingEngine(inner)
    await engine.decide(BASE)
    inner._revision = "r1"  # back to the revision it was asked under: nothing was filed for it
    await engine.decide(BASE)
    assert len(inner.inputs) == 2 and engine.hits == 0


async def test_lookup_reads_only_fresh_entries_and_never_asks_the_engine() -> None:
    inner = StaticPolicyEngine(answer, revision="r1")
    engine = CachingEngine(inner)
    assert engine.lookup(BASE) is None and inner.inputs == []
    decided = await engine.decide(BASE)
    assert engine.lookup({**BASE, "context": {"today": "2026-11-27", "now_ns": 9, "request_id": "r9"}}) is decided
    assert engine.lookup({**BASE, "subject": {**BASE["subject"], "districts": ["330212"]}}) is None  # type: ignore[dict-item]
    assert engine.lookup({**BASE, "context": {"today": "2026-11-27", "now_ns": 1, "bad": {1, 2}}}) is None  # not JSON
    inner._revision = "r2"
    assert engine.lookup(BASE) is None
    assert len(inner.inputs) == 1 and (engine.hits, engine.misses) == (1, 1)
    expiring = CachingEngine(StaticPolicyEngine(answer), ttl_s=0.0)
    await expiring.decide(BASE)
    assert expiring.lookup(BASE) is None


class CountingCache(CachingEngine):
    """Counts the decisions that went through ``decide`` (a task each) instead of ``lookup``."""

    asked = 0

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        self.asked += 1
        return await super().decide(input_doc)


def test_the_gateway_reads_cached_decisions_in_place(demo_dir: Path, tmp_path: Path, token: TokenFactory) -> None:
    """A repeated operation's decisions are all hits, read without ``decide``; only a new
    (connector, type) is asked; a cached deny still denies."""

    def rules(doc: Mapping[str, object]) -> object:
        if doc["resource"]["type"] == "Person":  # type: ignore[index]
            return {"allow": False, "code": "FORBIDDEN"}
        return {"allow": True, "filter": {}, "fields": {}}

    inner = StaticPolicyEngine(rules)
    engine = CountingCache(inner)
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    headers = {"Authorization": f"Bearer {token(dept='market_supervision', clearance=4)}"}
    records = "{ creditRecords(first: 3) { nodes { id title } } }"
    with_rep = "{ enterprises(first: 2) { nodes { uscc legalRepresentative { name } } } }"
    with TestClient(create_app(settings, engine=engine)) as client:

        def post(query: str) -> dict[str, Any]:
            response = client.post("/graphql", json={"query": query}, headers=headers)
            assert response.status_code == 200
            body: dict[str, Any] = response.json()
            return body

        first = post(records)
        asked = (engine.asked, len(inner.inputs))
        assert asked[0] >= 1 and asked[1] == asked[0]
        assert post(records) == first and (engine.asked, len(inner.inputs)) == asked  # hits only
        denied = post(with_rep)
        assert engine.asked > asked[0] and denied["data"]["enterprises"]["nodes"][0]["legalRepresentative"] is None
        asked = (engine.asked, len(inner.inputs))
        again = post(with_rep)
    assert again == denied and {e["extensions"]["code"] for e in again["errors"]} == {"FORBIDDEN"}
    assert (engine.asked, len(inner.inputs)) == asked
