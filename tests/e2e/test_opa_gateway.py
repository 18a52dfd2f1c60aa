"""The gateway with an OPA server as its engine: same answers, and fail closed when OPA dies."""

from __future__ import annotations

from pathlib import Path

from edge.settings import OpaServerSettings
from policies.opa_harness import HarnessServer
from tests.conftest import ROOT, TokenFactory, make_settings, serve

QUERY = "{ creditRecords(first: 3) { nodes { id title amount legalRepIdNumber } } }"


def test_opa_engine_answers_like_the_embedded_one_and_fails_closed(
    demo_dir: Path, tmp_path: Path, token: TokenFactory, live: object
) -> None:
    bearer = token(dept="market_supervision", clearance=2)
    embedded_answer = live.post(QUERY, bearer).json()  # type: ignore[attr-defined]
    harness = HarnessServer(ROOT / "policies" / "rego")
    url = harness.start()
    try:
        settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
        policy = settings.policy.model_copy(
            update={"engine": "opa", "opa": OpaServerSettings(url=url, timeout_s=2.0), "cache_ttl_s": 0}
        )
        with serve(settings.model_copy(update={"policy": policy})) as gateway:
            assert gateway.post(QUERY, bearer).json() == embedded_answer
            harness.kill()  # OPA dies mid-run
            after = gateway.post(QUERY, bearer).json()
    finally:
        harness.stop()
    assert after["data"] is None  # creditRecords is non-null: the denial nulls the whole response
    assert {e["extensions"]["code"] for e in after["errors"]} == {"POLICY_UNAVAILABLE"}
