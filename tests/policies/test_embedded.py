"""EmbeddedEngine: load/check/swap lifecycle, fail-closed evaluation, threads, and the real policies."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from regopy import Interpreter

from policies import embedded
from policies.cache import CachingEngine
from policies.decision import Decision, FieldRule
from policies.embedded import EmbeddedEngine, encode_input
from policies.engine import ENTRYPOINT, PolicyEngine

REGO_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
TODAY = "2026-11-27"

ALICE: dict[str, object] = {
    "id": "alice",
    "department": "market_supervision",
    "roles": ["staff"],
    "districts": ["330203"],
    "clearance": 3,
    "authenticated": True,
    "issuer": "citygraph-dev",
}
PUBLIC: dict[str, object] = {
    "id": "anonymous",
    "department": "",
    "roles": [],
    "districts": [],
    "clearance": 1,
    "authenticated": False,
    "issuer": "",
}
PUBLICITY = {
    "type": "compound",
    "operator": "and",
    "value": [
        {"type": "field", "field": "credit_records.publicity_start", "operator": "lte", "value": TODAY},
        {"type": "field", "field": "credit_records.publicity_end", "operator": "gte", "value": TODAY},
    ],
}


def request(
    subject: dict[str, object],
    purpose: str | None = "law_enforcement",
    type_: str = "CreditRecord",
    connector: str = "credit",
) -> dict[str, object]:
    """The input document exactly as the gateway builds it."""
    return {
        "subject": subject,
        "action": "read",
        "purpose": purpose,
        "case_ref": None,
        "resource": {
            "connector": connector,
            "type": type_,
            "classification": 3,
            "fields": [
                {"coordinate": "CreditRecord.kind", "level": 1, "pi": None},
                {"coordinate": "CreditRecord.amount", "level": 2, "pi": None},
                {"coordinate": "CreditRecord.legalRepIdNumber", "level": 3, "pi": "identity"},
            ],
        },
        "operation": {
            "type": "query",
            "name": "Records",
            "coordinates": ["Query.creditRecords", "CreditRecord.kind"],
            "args": {},
            "depth": 3,
            "cost": 10,
        },
        "context": {"now_ns": 1795000000000000000, "today": TODAY, "request_id": "r-1"},
    }


def officer(department: str, districts: list[str]) -> dict[str, object]:
    return {**ALICE, "department": department, "roles": ["district_officer", "staff"], "districts": districts}


def write(folder: Path, files: dict[str, str]) -> Path:
    """A policy folder holding ``files`` (and nothing else)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def authz(body: str, default: str = '{"allow": false, "reasons": ["default"]}') -> str:
    """A tiny ``citygraph.authz`` module with a default deny and ``body``."""
    return f"package citygraph.authz\n\ndefault decision := {default}\n\n{body}\n"


V1 = authz('decision := {"allow": true, "filter": {}, "reasons": ["v1"]} if input.user == "alice"')
V2 = authz('decision := {"allow": true, "filter": {}, "reasons": ["v2"]} if input.user == "alice"')


@pytest.fixture(scope="module")
def city() -> Iterator[EmbeddedEngine]:
    """The engine over the shipped policies, loaded once."""
    engine = EmbeddedEngine(REGO_DIR, max_threads=8)
    result = engine.load()
    assert result.ok, result.errors
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture
def make(tmp_path: Path) -> Iterator[list[EmbeddedEngine]]:
    """Engines created by a test, closed after it."""
    engines: list[EmbeddedEngine] = []
    yield engines
    for engine in engines:
        asyncio.run(engine.aclose())


def engine_for(engines: list[EmbeddedEngine], folder: Path, **kwargs: float) -> EmbeddedEngine:
    engine = EmbeddedEngine(folder, **kwargs)  # type: ignore[arg-type]
    engines.append(engine)
    return engine


# --- the shipped policies ---------------------------------------------------------------------


def test_is_a_policy_engine(city: EmbeddedEngine) -> None:
    assert isinstance(city, PolicyEngine)


def test_loads_the_manifest_revision(city: EmbeddedEngine) -> None:
    status = city.status()
    assert status.ready and status.revision == city.revision and city.revision.startswith("2026.11.27-1+sha256:")


async def test_public_gets_the_publicity_filter_and_no_l2_fields(city: EmbeddedEngine) -> None:
    decision = await city.decide(request(PUBLIC, purpose=None))
    assert decision.allow and decision.filter == PUBLICITY
    assert decision.fields == {
        "CreditRecord.amount": FieldRule(action="deny"),
        "CreditRecord.legalRepIdNumber": FieldRule(action="deny"),
    }
    # The public reads only L1 data, which is not audited.
    assert decision.obligations == {"audit": "none", "max_rows": 500} and decision.max_rows == 500


async def test_market_supervision_reads_city_wide(city: EmbeddedEngine) -> None:
    decision = await city.decide(request(ALICE))
    assert decision.allow and decision.filter == {}
    assert decision.fields == {"CreditRecord.legalRepIdNumber": FieldRule(action="allow")}
    assert decision.obligations == {"audit": "full", "max_rows": 500}
    assert decision.reasons == ("market supervision: city-wide",)


@pytest.mark.parametrize("department", ["urban_management", "market_supervision"])
async def test_district_officers_are_held_to_their_districts(city: EmbeddedEngine, department: str) -> None:
    decision = await city.decide(request(officer(department, ["330212", "330203"])))
    assert decision.filter == {
        "type": "field",
        "field": "credit_records.district_code",
        "operator": "in",
        "value": ["330203", "330212"],
    }


async def test_other_departments_get_the_publicity_filter(city: EmbeddedEngine) -> None:
    decision = await city.decide(request({**ALICE, "department": "taxation"}))
    assert decision.allow and decision.filter == PUBLICITY


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        (None, {"CreditRecord.legalRepIdNumber": FieldRule(action="deny", code="PURPOSE_REQUIRED")}),
        ("curiosity", {"CreditRecord.legalRepIdNumber": FieldRule(action="deny", code="PURPOSE_REQUIRED")}),
        # L3+ fields are granted explicitly: the gateway denies sensitive fields a decision omits.
        ("law_enforcement", {"CreditRecord.legalRepIdNumber": FieldRule(action="allow")}),
    ],
)
async def test_l3_fields_need_a_valid_purpose(
    city: EmbeddedEngine, purpose: str | None, expected: dict[str, FieldRule]
) -> None:
    decision = await city.decide(request(ALICE, purpose=purpose))
    assert decision.allow and decision.fields == expected


async def test_clearance_2_staff_get_the_mask_spec(city: EmbeddedEngine) -> None:
    decision = await city.decide(request({**ALICE, "clearance": 2}))
    assert decision.fields == {"CreditRecord.legalRepIdNumber": FieldRule(action="mask", keep_prefix=3, keep_suffix=4)}


@pytest.mark.parametrize("type_", ["Enterprise", "CreditProfile"])
async def test_enterprises_and_profiles_are_unrestricted(city: EmbeddedEngine, type_: str) -> None:
    decision = await city.decide(request(PUBLIC, purpose=None, type_=type_))
    assert decision.allow and decision.filter == {}


@pytest.mark.parametrize(("connector", "type_"), [("tax", "CreditRecord"), ("credit", "Person")])
async def test_unknown_connector_or_type_is_denied(city: EmbeddedEngine, connector: str, type_: str) -> None:
    decision = await city.decide(request(ALICE, type_=type_, connector=connector))
    assert decision == Decision(allow=False, reasons=("no policy for this connector",), code="FORBIDDEN")


async def test_eight_threads_never_mix_up_principals(city: EmbeddedEngine) -> None:
    # Eight callers keep the eight executor threads busy, alternating two principals. Every officer
    # has a district of its own that the decision echoes back, so any cross-talk between threads
    # (shared interpreter state, another call's input) shows up as a wrong filter.
    async def caller(worker: int) -> list[bool]:
        outcomes: list[bool] = []
        for round_ in range(150):
            if (worker + round_) % 2:
                decision = await city.decide(request(PUBLIC, purpose=None))
                outcomes.append(decision.allow and decision.filter == PUBLICITY)
            else:
                district = f"{worker}{round_:05d}"
                decision = await city.decide(request(officer("market_supervision", [district])))
                outcomes.append(decision.filter is not None and decision.filter.get("value") == [district])
        return outcomes

    results = await asyncio.gather(*(caller(worker) for worker in range(8)))
    assert sum(len(r) for r in results) == 1200
    assert all(all(r) for r in results)


# --- input documents ----------------------------------------------------------------------------


def nested(depth: int) -> dict[str, object]:
    doc: dict[str, object] = {}
    for _ in range(depth - 1):
        doc = {"n": doc}
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        {**request(ALICE), "operation": nested(64)},  # 65 levels with the top-level object
        {**request(ALICE), "case_ref": 2**53 + 1},
        {**request(ALICE), "case_ref": -(2**53) - 1},
        {**request(ALICE), "context": {"now_ns": 2**63, "today": TODAY}},
        {**request(ALICE), "case_ref": math.nan},
        {**request(ALICE), "case_ref": math.inf},
        {**request(ALICE), "case_ref": "\ud800"},
        {**request(ALICE), "case_ref": {1: "x"}},
        {**request(ALICE), "case_ref": object()},
    ],
    ids=[
        "too-deep",
        "big-int",
        "small-int",
        "ns-beyond-int64",
        "nan",
        "inf",
        "surrogate",
        "int-key",
        "object",
    ],
)
async def test_unsafe_input_is_refused_before_evaluation(city: EmbeddedEngine, doc: dict[str, object]) -> None:
    decision = await city.decide(doc)
    assert not decision.allow and decision.code == "FORBIDDEN"
    assert decision.reasons[0].startswith("input rejected")


async def test_limits_are_inclusive_and_now_ns_is_int64(city: EmbeddedEngine) -> None:
    doc = {**request(ALICE), "case_ref": 2**53, "operation": nested(63)}
    assert (await city.decide(doc)).allow


def test_encode_input_sends_raw_utf8() -> None:
    # regopy keeps \\uXXXX escapes as literal text, so non-ASCII must go in unescaped.
    assert encode_input({"purpose": "执法"}) == '{"purpose": "执法"}'


# --- lifecycle ------------------------------------------------------------------------------------


async def test_not_ready_until_a_load_succeeds(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": "package citygraph.authz\nallow {\n"}))
    decision = await engine.decide({"user": "alice"})
    assert decision.code == "POLICY_UNAVAILABLE"
    result = engine.load()
    assert not result.ok and result.errors
    status = engine.status()
    assert not status.ready and status.revision == "" and result.revision in status.detail
    assert (await engine.decide({"user": "alice"})).code == "POLICY_UNAVAILABLE"


async def test_revision_is_a_content_hash_without_manifest(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": V1}))
    first = engine.load()
    assert first.ok and re.fullmatch(r"sha256:[0-9a-f]{12}", first.revision)
    assert engine.load().revision == first.revision  # deterministic
    write(tmp_path / "p", {"authz.rego": V2})
    assert engine.load().revision != first.revision


async def test_reload_swaps_and_failures_keep_the_last_good_bundle(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    folder = tmp_path / "p"
    engine = engine_for(make, write(folder, {"authz.rego": V1, ".manifest": '{"revision": "r1"}'}))
    assert engine.load().ok
    assert (await engine.decide({"user": "alice"})).reasons == ("v1",)

    write(folder, {"authz.rego": V2, ".manifest": '{"revision": "r2"}'})
    assert engine.load().ok and engine.revision.startswith("r2+sha256:")
    assert (await engine.decide({"user": "alice"})).reasons == ("v2",)

    failing_test = "package citygraph.authz_test\nimport data.citygraph.authz\ntest_fails if { 1 == 2 }\n"
    write(folder, {"authz.rego": V1, "authz_test.rego": failing_test, ".manifest": '{"revision": "r3"}'})
    result = engine.load()
    assert not result.ok and result.revision.startswith("r3+sha256:")
    assert any("test_fails: FAIL" in error for error in result.errors), result.errors
    status = engine.status()
    assert status.ready and status.revision.startswith("r2+sha256:")
    assert "last failed revision r3" in status.detail and "test_fails" in status.detail
    assert (await engine.decide({"user": "alice"})).reasons == ("v2",)


async def test_status_is_built_once_per_state_and_follows_every_change(
    tmp_path: Path, make: list[EmbeddedEngine]
) -> None:
    folder = tmp_path / "p"
    engine = engine_for(make, write(folder, {"authz.rego": V1, ".manifest": '{"revision": "r1"}'}))
    before = engine.status()
    assert engine.status() is before and not before.ready and before.revision == ""
    assert engine.load().ok
    loaded = engine.status()
    assert loaded.ready and loaded.revision.startswith("r1+") and engine.status() is loaded
    write(folder, {"authz.rego": "package citygraph.authz\nallow {\n", ".manifest": '{"revision": "r2"}'})
    assert not engine.load().ok
    failed = engine.status()
    assert failed.ready and failed.revision == loaded.revision and "last failed revision r2" in failed.detail
    write(folder, {"authz.rego": V2, ".manifest": '{"revision": "r3"}'})
    assert engine.load().ok
    swapped = engine.status()
    assert swapped.revision.startswith("r3+") and "failed" not in swapped.detail and engine.status() is swapped
    await engine.aclose()
    closed = engine.status()
    assert not closed.ready and "closed" in closed.detail


async def test_with_data_is_refused_at_lint_and_never_loaded(
    tmp_path: Path, make: list[EmbeddedEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def must_not_run(*args: object, **kwargs: object) -> list[str]:
        calls.append("called")
        raise AssertionError("reached past the lint")

    monkeypatch.setattr(embedded, "check_in_child", must_not_run)
    monkeypatch.setattr(embedded, "_build", must_not_run)
    test = (
        "package citygraph.authz_test\nimport data.citygraph.authz\n"
        'test_x if { authz.decision.allow with data.citygraph.purposes as {"x": 1} }\n'
    )
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": V1, "authz_test.rego": test}))
    result = engine.load()
    assert not result.ok and calls == []
    assert any("'with data.' is forbidden" in error for error in result.errors)
    assert not engine.status().ready


async def test_a_crashing_check_kills_only_the_child(
    tmp_path: Path, make: list[EmbeddedEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "p"
    engine = engine_for(make, write(folder, {"authz.rego": V1, ".manifest": '{"revision": "good"}'}))
    assert engine.load().ok
    # regopy 1.5.2 crashes (SIGSEGV or an uncaught C++ exception, SIGABRT) compiling `with input as`
    # over a rule that calls a builtin. The lint
    # refuses it, so switch the lint off to prove the child process contains the crash.
    monkeypatch.setattr(embedded, "lint_bundle", lambda files: [])
    crash = (
        "package citygraph.authz_test\nimport data.citygraph.authz\n"
        "s if is_string(input.user)\n"
        'test_crash if { s with input as {"user": "alice"} }\n'
    )
    write(folder, {"authz.rego": V2, "authz_test.rego": crash, ".manifest": '{"revision": "crashy"}'})
    result = engine.load()
    assert not result.ok
    assert any(re.search(r"crashed \(killed by SIG(SEGV|ABRT)\)", error) for error in result.errors), result.errors
    assert engine.revision.startswith("good+sha256:")
    assert (await engine.decide({"user": "alice"})).reasons == ("v1",)


def test_a_hanging_check_times_out(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    slow = "package citygraph.authz_test\ntest_slow if count([x | some x in numbers.range(1, 100000000); x > 0]) > 0\n"
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": V1, "authz_test.rego": slow}), check_timeout_s=2)
    result = engine.load()
    assert not result.ok and result.errors == ["policy check timed out after 2s"]


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"authz_test.rego": "package citygraph.authz_test\ntest_a := true\n"}, "no policy modules"),
        ({"authz.rego": V1, ".manifest": '{"rego_version": 0}'}, "rego_version must be 1"),
        (
            {"authz.rego": V1, "x.rego": "package other\nx := 1\n", ".manifest": '{"roots": ["citygraph"]}'},
            "outside",
        ),
        ({"authz.rego": V1, "data.json": "[1]"}, "data.json must hold a JSON object"),
        ({"authz.rego": authz('decision := {"allow": true, "filter": {}}')}, "allows an empty input"),
        ({"authz.rego": authz("decision := 1 +")}, "does not build"),
    ],
)
def test_refused_bundles(tmp_path: Path, make: list[EmbeddedEngine], files: dict[str, str], fragment: str) -> None:
    result = engine_for(make, write(tmp_path / "p", files)).load()
    assert not result.ok and any(fragment in error for error in result.errors), result.errors


# --- fail-closed evaluation -----------------------------------------------------------------------


async def test_strict_builtins_make_an_erroring_deny_rule_deny(
    tmp_path: Path, make: list[EmbeddedEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        'deny contains "blocked network" if net.cidr_contains("10.0.0.0/8", input.ip)\n'
        'decision := {"allow": true, "filter": {}} if {\n\tinput.user == "alice"\n\tcount(deny) == 0\n}'
    )
    files = {"authz.rego": authz(body)}
    monkeypatch.setattr(embedded, "lint_bundle", lambda files: [])  # the lint would refuse net.*
    engine = engine_for(make, write(tmp_path / "p", files))
    assert engine.load().ok
    decision = await engine.decide({"user": "alice", "ip": "10.1.2.3"})
    assert not decision.allow and decision.code == "POLICY_UNAVAILABLE"

    # Why strictness matters: the same bundle on a non-strict interpreter fails open.
    rego = Interpreter()
    rego.add_module("authz.rego", files["authz.rego"])
    bundle = rego.build(None, [ENTRYPOINT])
    lax = Interpreter()
    lax.set_input_term(json.dumps({"user": "alice", "ip": "10.1.2.3"}))
    assert lax.query_bundle_entrypoint(bundle, ENTRYPOINT)[0].expressions[0]["allow"] is True


async def test_undefined_result_is_a_deny(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    body = 'package citygraph.authz\ndecision := {"allow": true, "filter": {}} if input.user == "alice"\n'
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": body}))
    assert engine.load().ok
    assert (await engine.decide({"user": "alice"})).allow
    decision = await engine.decide({"user": "bob"})
    assert decision == Decision.deny("policy result undefined")


async def test_conflicting_values_deny_and_the_engine_keeps_serving(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    body = (
        'decision := {"allow": true, "filter": {}, "reasons": ["a"]} if input.a\n'
        'decision := {"allow": false, "reasons": ["b"]} if input.b'
    )
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": authz(body)}), max_threads=1)
    assert engine.load().ok
    conflict = await engine.decide({"a": True, "b": True})
    assert not conflict.allow and conflict.code == "POLICY_UNAVAILABLE"
    assert (await engine.decide({"a": True})).reasons == ("a",)


@pytest.mark.parametrize(
    "value",
    [
        '{"allow": "true", "filter": {}}',
        '{"allow": true}',
        '{"allow": true, "filter": "district = 1"}',
        '{"allow": true, "filter": {}, "fields": {"X.y": {"action": "mask", "keep_prefix": 99}}}',
        "true",
    ],
)
async def test_malformed_decisions_deny(tmp_path: Path, make: list[EmbeddedEngine], value: str) -> None:
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": authz(f"decision := {value} if input.go")}))
    assert engine.load().ok
    decision = await engine.decide({"go": True})
    assert not decision.allow and decision.code == "FORBIDDEN"


async def test_a_slow_evaluation_times_out(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    body = 'decision := {"allow": count([x | some x in numbers.range(1, input.n); x > 0]) > 0, "filter": {}} if input.n'
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": authz(body)}), timeout_s=0.05)
    assert engine.load().ok
    decision = await engine.decide({"n": 300_000})
    assert not decision.allow and decision.code == "POLICY_UNAVAILABLE"
    assert "timed out" in decision.reasons[0]
    assert (await engine.decide({"n": 10})).allow  # the other workers still serve


async def test_non_ascii_input_matches_policy_literals(tmp_path: Path, make: list[EmbeddedEngine]) -> None:
    body = (
        'decision := {"allow": true, "filter": {}} if {\n\tinput.purpose == "执法检查"\n\tcount(input.purpose) == 4\n}'
    )
    engine = engine_for(make, write(tmp_path / "p", {"authz.rego": authz(body)}))
    assert engine.load().ok
    assert (await engine.decide({"purpose": "执法检查"})).allow


async def test_closed_engine_denies(tmp_path: Path) -> None:
    engine = EmbeddedEngine(write(tmp_path / "p", {"authz.rego": V1}))
    assert engine.load().ok
    await engine.aclose()
    decision = await engine.decide({"user": "alice"})
    assert decision.code == "POLICY_UNAVAILABLE"
    assert not engine.status().ready


async def test_input_documents_are_read_never_changed(city: EmbeddedEngine) -> None:
    # Parts of the gateway's input documents are shared between requests (schema.policy.input_docs).
    doc = request(officer("market_supervision", ["330203"]))
    before = copy.deepcopy(doc)
    cached = CachingEngine(city)
    for _ in range(2):  # a miss, evaluated by the engine, then a hit
        decision = await cached.decide(doc)
        assert decision.allow
    assert doc == before and (cached.hits, cached.misses) == (1, 1)
