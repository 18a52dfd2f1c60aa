"""OpaEngine against the OPA-REST harness: the contract cases, parity with the embedded engine, and
every way OPA can fail (each a deny, never an allow), the circuit breaker, TLS and the bearer token."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from policies.contract.runner import (
    CASES_PATH,
    CaseResult,
    contract_command,
    load_cases,
    run_cases,
)
from policies.embedded import EmbeddedEngine
from policies.engine import PolicyEngine
from policies.opa import UNKNOWN_REVISION, OpaConfigError, OpaEngine, OpaSettings
from policies.opa_harness import Fault, HarnessServer, HarnessTLS, serve_harness

REGO_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
REVISION = json.loads((REGO_DIR / ".manifest").read_text())["revision"]
CASES = load_cases(CASES_PATH)
NOTES = [case.note for case in CASES]
#: A floor, so deleting cases (or breaking the loader) cannot pass silently.
MIN_CASES = 25

#: An input the city's policies allow: a security officer reading the audit trail. A fail-open bug
#: in any failure path below would show up as an allow.
OFFICER: dict[str, object] = {
    "subject": {
        "id": "sam",
        "department": "cyberspace_office",
        "roles": ["security_officer"],
        "districts": [],
        "clearance": 3,
        "authenticated": True,
        "issuer": "citygraph-dev",
    },
    "action": "read",
    "purpose": "audit_inspection",
    "case_ref": None,
    "resource": {"connector": "gateway", "type": "AuditRecord", "classification": 1, "fields": []},
    "operation": {"type": "query", "name": "Audit", "coordinates": ["Query.auditRecords"], "args": {}, "depth": 2},
    "context": {"now_ns": 1795000000000000000, "today": "2026-11-27", "request_id": "r-1"},
}
ALLOWED = {
    "allow": True,
    "fields": {},
    "filter": {},
    "obligations": {"audit": "full", "max_rows": 500},
    "reasons": ["security officer"],
}


@pytest.fixture(scope="module")
def harness() -> Iterator[HarnessServer]:
    """One harness for the module; tests that kill a server start their own."""
    with HarnessServer(REGO_DIR) as server:
        yield server
    assert not server.running


@pytest.fixture
def opa(harness: HarnessServer) -> Iterator[HarnessServer]:
    """The module's harness with its fault cleared before and after the test."""
    harness.harness.fault = None
    yield harness
    harness.harness.fault = None


def settings(url: str, **options: object) -> OpaSettings:
    return OpaSettings.from_url(url, **options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the contract cases -------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_results() -> dict[str, CaseResult]:
    return {result.note: result for result in run_cases(CASES_PATH, engine="embedded")}


@pytest.fixture(scope="module")
def opa_results(harness: HarnessServer) -> dict[str, CaseResult]:
    harness.harness.fault = None
    results = run_cases(CASES_PATH, engine="opa", settings=settings(harness.url, timeout_s=5.0))
    return {result.note: result for result in results}


def test_contract_cases_cover_every_department_and_are_well_formed() -> None:
    assert len(CASES) >= MIN_CASES
    assert all(not case.problem for case in CASES), [case.problem for case in CASES if case.problem]
    assert {case.note.split("/", 1)[0] for case in CASES} == {"authz", "credit", "license", "gateway"}
    connectors = {
        case.input["resource"].get("connector")
        for case in CASES
        if isinstance(case.input, dict) and isinstance(case.input.get("resource"), dict)
    }
    assert {"credit", "license", "gateway"} <= connectors
    assert all(case.modules is None and case.data is None for case in CASES)  # the city's bundle


@pytest.mark.parametrize("note", NOTES)
def test_contract_case_on_the_embedded_engine(note: str, embedded_results: dict[str, CaseResult]) -> None:
    result = embedded_results[note]
    assert result.status == "PASS", result.message


@pytest.mark.parametrize("note", NOTES)
def test_contract_case_through_opa_engine(note: str, opa_results: dict[str, CaseResult]) -> None:
    result = opa_results[note]
    assert result.status == "PASS", result.message


def test_runner_fails_wrong_expectations_and_reports_malformed_cases(
    tmp_path: Path, opa: HarnessServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        textwrap.dedent(
            """\
            cases:
            - note: wrong/officer is not allowed
              query: data.citygraph.authz.decision = x
              input: %s
              want_result: [{x: {allow: false, reasons: [security officers only]}}]
            - note: wrong/true is not 1
              query: data.citygraph.authz.decision = x
              input: {}
              want_result: [{x: {allow: 0, reasons: [no policy for this connector]}}]
            - note: malformed/query
              query: data.citygraph.authz.decision
              input: {}
              want_result: []
            - note: own/modules
              modules: ["package t\\n\\np := 1\\n"]
              query: data.t.p = x
              want_result: [{x: 1.0}]
            """
        )
        % json.dumps(OFFICER)
    )
    embedded = {r.note: r.status for r in run_cases(cases)}
    assert embedded == {
        "wrong/officer is not allowed": "FAIL",
        "wrong/true is not 1": "FAIL",
        "malformed/query": "ERROR",
        "own/modules": "PASS",
    }
    through_opa = {r.note: r.status for r in run_cases(cases, engine="opa", url=opa.url)}
    assert through_opa == {
        "wrong/officer is not allowed": "FAIL",
        # parse_decision reads allow: 0 as a deny, like the policy's own false: the validated
        # decisions agree, which is all the OPA path compares
        "wrong/true is not 1": "PASS",
        "malformed/query": "ERROR",
        "own/modules": "SKIP",
    }
    assert contract_command(cases, None) == 1
    assert contract_command(CASES_PATH, opa.url) == 0
    out = capsys.readouterr().out
    assert "FAIL wrong/officer is not allowed" in out
    assert f"{len(CASES)} passed, 0 failed, 0 skipped ({opa.url})" in out


# --- OpaEngine against the harness --------------------------------------------------------


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedEngine]:
    engine = EmbeddedEngine(REGO_DIR)
    assert engine.load().ok
    yield engine
    asyncio.run(engine.aclose())


async def test_decisions_equal_the_embedded_engines(opa: HarnessServer, embedded: EmbeddedEngine) -> None:
    engine = OpaEngine(settings(opa.url))
    assert isinstance(engine, PolicyEngine)
    inputs = [case.input for case in CASES if isinstance(case.input, dict)][::5]
    assert len(inputs) >= 5
    try:
        for doc in inputs:
            assert await engine.decide(doc) == await embedded.decide(doc)
    finally:
        await engine.aclose()


async def test_status_reports_the_revision_from_provenance(opa: HarnessServer) -> None:
    engine = OpaEngine(settings(opa.url))
    assert engine.status().revision == UNKNOWN_REVISION
    assert (await engine.decide(OFFICER)).allow
    status = engine.status()
    assert status.ready and status.revision == REVISION
    fresh = OpaEngine(settings(opa.url))
    assert (await fresh.probe()).revision == REVISION  # before any decision
    await engine.aclose()
    await fresh.aclose()
    assert not engine.status().ready
    assert (await engine.decide(OFFICER)).code == "POLICY_UNAVAILABLE"  # closed


def test_harness_speaks_opas_data_api(opa: HarnessServer) -> None:
    url = f"{opa.url}/v1/data/citygraph/authz/decision"
    allowed = httpx.post(url, json={"input": OFFICER}).json()
    assert allowed == {"result": ALLOWED}
    with_provenance = httpx.post(f"{url}?provenance", json={"input": OFFICER}).json()
    assert with_provenance["provenance"]["bundles"] == {str(REGO_DIR): {"revision": REVISION}}
    missing_input = httpx.post(url, json={}).json()  # OPA evaluates without input and warns
    assert missing_input["warning"]["code"] == "api_usage_warning"
    assert missing_input["result"]["allow"] is False
    undefined = httpx.post(f"{opa.url}/v1/data/citygraph/credit/decision", json={"input": {}})
    assert undefined.status_code == 200 and undefined.json() == {}
    assert httpx.post(url, content=b"{").status_code == 400
    assert httpx.get(f"{opa.url}/health?bundles").json() == {}
    assert httpx.post(f"{opa.url}/v1/compile", json={"query": "data.x"}).status_code == 501


# --- fail closed --------------------------------------------------------------------------

FAULTS = {
    "undefined": (Fault(body={}), "FORBIDDEN"),
    "api_usage_warning": (
        Fault(body={"result": ALLOWED, "warning": {"code": "api_usage_warning", "message": "'input' key missing"}}),
        "POLICY_UNAVAILABLE",
    ),
    "allow is the string true": (Fault(body={"result": {**ALLOWED, "allow": "true"}}), "FORBIDDEN"),
    "allow without a filter": (Fault(body={"result": {"allow": True}}), "FORBIDDEN"),
    "http 500": (Fault(status=500), "POLICY_UNAVAILABLE"),
    "http 202 carrying an allow": (Fault(status=202, body={"result": ALLOWED}), "POLICY_UNAVAILABLE"),
    "http 401": (Fault(status=401, body={"code": "unauthorized", "message": "no"}), "POLICY_UNAVAILABLE"),
    "not json": (Fault(text="<html>proxy error</html>"), "POLICY_UNAVAILABLE"),
    "json but not an object": (Fault(body=[ALLOWED]), "POLICY_UNAVAILABLE"),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_every_bad_answer_is_a_deny(name: str, opa: HarnessServer) -> None:
    fault, code = FAULTS[name]
    engine = OpaEngine(settings(opa.url))
    try:
        assert (await engine.decide(OFFICER)).allow  # the input really is allowed
        opa.harness.fault = fault
        decision = await engine.decide(OFFICER)
    finally:
        await engine.aclose()
    assert not decision.allow
    assert decision.code == code, decision.reasons


async def test_a_slow_opa_times_out_into_a_deny(opa: HarnessServer) -> None:
    engine = OpaEngine(settings(opa.url, timeout_s=0.2))
    opa.harness.fault = Fault(delay_s=1.0)  # then evaluates normally: it would allow
    started = time.perf_counter()
    try:
        decision = await engine.decide(OFFICER)
    finally:
        await engine.aclose()
    assert time.perf_counter() - started < 0.8
    assert not decision.allow and decision.code == "POLICY_UNAVAILABLE"
    assert "timed out" in decision.reasons[0]


async def test_connection_refused_is_a_deny() -> None:
    engine = OpaEngine(settings(f"http://127.0.0.1:{free_port()}"))
    decision = await engine.decide(OFFICER)
    await engine.aclose()
    assert not decision.allow and decision.code == "POLICY_UNAVAILABLE"
    assert engine.status().revision == UNKNOWN_REVISION


async def test_inputs_the_embedded_engine_refuses_are_refused_without_asking_opa(opa: HarnessServer) -> None:
    engine = OpaEngine(settings(opa.url))
    before = opa.harness.calls
    decision = await engine.decide({**OFFICER, "context": {"now_ns": 2**64}})
    await engine.aclose()
    assert not decision.allow and decision.code == "FORBIDDEN"
    assert opa.harness.calls == before


# --- circuit breaker ----------------------------------------------------------------------


async def test_breaker_opens_stops_calling_opa_then_half_opens_and_recovers(opa: HarnessServer) -> None:
    engine = OpaEngine(settings(opa.url, breaker_failures=3, breaker_open_s=1.0))
    calls = opa.harness.calls
    opa.harness.fault = Fault(status=500)
    try:
        for _ in range(3):
            assert (await engine.decide(OFFICER)).code == "POLICY_UNAVAILABLE"
        assert opa.harness.calls == calls + 3
        assert engine.breaker_open and not engine.status().ready
        for _ in range(5):  # open: denied at once, OPA not called
            decision = await engine.decide(OFFICER)
            assert decision.code == "POLICY_UNAVAILABLE" and "breaker" in decision.reasons[0]
        assert opa.harness.calls == calls + 3

        await asyncio.sleep(1.05)  # half-open: one trial, which fails and reopens the breaker
        assert (await engine.decide(OFFICER)).code == "POLICY_UNAVAILABLE"
        assert (await engine.decide(OFFICER)).code == "POLICY_UNAVAILABLE"
        assert opa.harness.calls == calls + 4

        await asyncio.sleep(1.05)  # half-open again, OPA healthy: one trial goes through, the rest wait
        opa.harness.fault = Fault(delay_s=0.1)
        decisions = await asyncio.gather(*(engine.decide(OFFICER) for _ in range(5)))
        assert opa.harness.calls == calls + 5
        assert sum(d.allow for d in decisions) == 1
        assert all(d.code == "POLICY_UNAVAILABLE" for d in decisions if not d.allow)
        assert not engine.breaker_open and engine.status().ready

        opa.harness.fault = None  # closed: every call reaches OPA again
        assert all(d.allow for d in await asyncio.gather(*(engine.decide(OFFICER) for _ in range(3))))
        assert opa.harness.calls == calls + 8
    finally:
        await engine.aclose()


async def test_undefined_answers_do_not_open_the_breaker(opa: HarnessServer) -> None:
    engine = OpaEngine(settings(opa.url, breaker_failures=2))
    opa.harness.fault = Fault(body={})
    try:
        for _ in range(4):
            assert (await engine.decide(OFFICER)).code == "FORBIDDEN"
        assert not engine.breaker_open  # OPA answers; the policy is what grants nothing
    finally:
        await engine.aclose()


async def test_killing_opa_mid_run_turns_decisions_into_policy_unavailable() -> None:
    server = HarnessServer(REGO_DIR)
    server.start()
    engine = OpaEngine(settings(server.url, timeout_s=3.0, breaker_failures=3, breaker_open_s=30))
    try:
        assert (await engine.decide(OFFICER)).allow
        server.harness.fault = Fault(delay_s=1.0)  # in flight when OPA dies; it would allow
        in_flight = [asyncio.create_task(engine.decide(OFFICER)) for _ in range(4)]
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        await asyncio.to_thread(server.kill)
        assert not server.running
        decisions = await asyncio.gather(*in_flight)
        assert time.perf_counter() - started < 1.5  # reset connections, not the 3 s timeout
        decisions += [await engine.decide(OFFICER) for _ in range(5)]  # refused, then the breaker
        assert all(not d.allow and d.code == "POLICY_UNAVAILABLE" for d in decisions), decisions
        assert engine.breaker_open
    finally:
        await engine.aclose()
        server.stop()
    assert not server.running


# --- configuration, token, TLS ------------------------------------------------------------


def test_settings_refuse_what_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OpaConfigError):
        OpaSettings(scheme="https", client_cert=Path("c.pem"))
    with pytest.raises(OpaConfigError):
        OpaSettings(ca_file=Path("ca.pem"))  # http
    with pytest.raises(OpaConfigError):
        OpaSettings.from_url("http://opa:8181/v1/data")
    assert OpaSettings.from_url("https://opa.internal").port == 443
    monkeypatch.delenv("CITYGRAPH_TEST_OPA_TOKEN", raising=False)
    with pytest.raises(OpaConfigError, match="CITYGRAPH_TEST_OPA_TOKEN"):
        OpaEngine(OpaSettings(token_env="CITYGRAPH_TEST_OPA_TOKEN"))


async def test_bearer_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGRAPH_TEST_OPA_TOKEN", "s3cret-token")
    with HarnessServer(REGO_DIR, token="s3cret-token") as server:
        with_token = OpaEngine(settings(server.url, token_env="CITYGRAPH_TEST_OPA_TOKEN"))
        without = OpaEngine(settings(server.url))
        try:
            assert (await with_token.decide(OFFICER)).allow
            refused = await without.decide(OFFICER)
            assert not refused.allow and refused.code == "POLICY_UNAVAILABLE"
            assert "401" in refused.reasons[0]
        finally:
            await with_token.aclose()
            await without.aclose()


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.with_suffix(".key").write_bytes(key_pem)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("CityGraph test CA", ca_key, None)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    return {
        "ca": _write(folder / "ca.pem", ca),
        "server": _write(folder / "server.pem", _certificate("opa", server_key, (ca, ca_key)), server_key),
        "client": _write(folder / "client.pem", _certificate("gateway", client_key, (ca, ca_key)), client_key),
    }


async def test_private_ca_and_mutual_tls(pki: dict[str, Path]) -> None:
    tls = HarnessTLS(certfile=pki["server"], keyfile=pki["server"].with_suffix(".key"), client_ca=pki["ca"])
    with HarnessServer(REGO_DIR, tls=tls) as server:
        assert server.url.startswith("https://")
        client = {"client_cert": pki["client"], "client_key": pki["client"].with_suffix(".key")}
        engines = {
            "mtls": OpaEngine(settings(server.url, ca_file=pki["ca"], **client)),
            "no client certificate": OpaEngine(settings(server.url, ca_file=pki["ca"])),
            "system CAs only": OpaEngine(settings(server.url, **client)),
        }
        try:
            decisions = {name: await engine.decide(OFFICER) for name, engine in engines.items()}
        finally:
            for engine in engines.values():
                await engine.aclose()
    assert decisions["mtls"].allow
    for name in ("no client certificate", "system CAs only"):
        assert not decisions[name].allow and decisions[name].code == "POLICY_UNAVAILABLE", name


def test_serve_harness_yields_the_url_and_stops() -> None:
    with serve_harness(REGO_DIR) as url:
        assert httpx.get(f"{url}/health").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")
