"""Fail closed: engine errors, undefined and malformed decisions, audit failures leak no data."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from audit import AuditEntry, AuditRecord, AuditTrail, AuditWriteError
from connectors.base import FetchRequest, Record
from connectors.credit import CreditConnector
from gateway import create_app
from policies.engine import StaticPolicyEngine
from tests.conftest import TokenFactory, make_settings

QUERY = "{ creditRecords(first: 5) { nodes { id title decisionNumber } } }"
ALLOW_ALL = {"allow": True, "filter": {}, "fields": {}}


def client_with(demo_dir: Path, tmp_path: Path, **inject: object) -> TestClient:
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    return TestClient(create_app(settings, **inject))  # type: ignore[arg-type]


def run(
    demo_dir: Path, tmp_path: Path, token: TokenFactory, answer: Callable[[Mapping[str, object]], object]
) -> dict[str, Any]:
    with client_with(demo_dir, tmp_path, engine=StaticPolicyEngine(answer)) as client:
        response = client.post(
            "/graphql",
            json={"query": QUERY},
            headers={"Authorization": f"Bearer {token(dept='market_supervision')}"},
        )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def boom(_: Mapping[str, object]) -> object:
    raise RuntimeError("engine crashed")


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (boom, "POLICY_UNAVAILABLE"),
        (lambda _: None, "FORBIDDEN"),  # undefined result
        (lambda _: {"allow": "true", "filter": {}}, "FORBIDDEN"),  # not literally true
        (lambda _: {"allow": 1, "filter": {}}, "FORBIDDEN"),
        (lambda _: {"allow": True}, "FORBIDDEN"),  # list resource without a filter
        (lambda _: {"allow": True, "filter": "district = 1"}, "FORBIDDEN"),  # not UCAST
        (
            lambda _: {
                "allow": True,
                "filter": {
                    "type": "field",
                    "field": "credit_records.legal_rep_name",
                    "operator": "eq",
                    "value": "x",
                },
            },
            "FORBIDDEN",
        ),  # not in the allowlist
    ],
)
def test_doubt_means_no_data(
    demo_dir: Path,
    tmp_path: Path,
    token: TokenFactory,
    answer: Callable[[Mapping[str, object]], object],
    code: str,
) -> None:
    body = run(demo_dir, tmp_path, token, answer)
    assert body["data"] is None or body["data"] == {"creditRecords": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]


def test_the_same_engine_allowing_returns_data(demo_dir: Path, tmp_path: Path, token: TokenFactory) -> None:
    body = run(demo_dir, tmp_path, token, lambda _: ALLOW_ALL)
    assert "errors" not in body and len(body["data"]["creditRecords"]["nodes"]) == 5


def test_unknown_field_action_is_a_deny(demo_dir: Path, tmp_path: Path, token: TokenFactory) -> None:
    decision = {**ALLOW_ALL, "fields": {"CreditRecord.decisionNumber": {"action": "reveal-partly"}}}
    body = run(demo_dir, tmp_path, token, lambda _: decision)
    nodes = body["data"]["creditRecords"]["nodes"]
    assert all(n["title"] and n["decisionNumber"] is None for n in nodes)


class BrokenAudit(AuditTrail):
    """An audit trail whose disk is gone: every append fails."""

    async def append(self, entry: AuditEntry) -> AuditRecord:
        raise AuditWriteError("disk full")


def test_audit_failure_withholds_sensitive_data(demo_dir: Path, tmp_path: Path, token: TokenFactory) -> None:
    audit = BrokenAudit(f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}")
    with client_with(demo_dir, tmp_path, audit=audit) as client:
        headers = {"Authorization": f"Bearer {token(dept='market_supervision')}"}
        response = client.post("/graphql", json={"query": QUERY}, headers=headers)
        public = client.post("/graphql", json={"query": "{ creditRecords(first: 2) { nodes { title } } }"})
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["AUDIT_UNAVAILABLE"]
    # Public (L1) data needs no audit record, so it still flows.
    assert len(public.json()["data"]["creditRecords"]["nodes"]) == 2


def test_audit_record_holds_the_evidence(demo_dir: Path, tmp_path: Path, token: TokenFactory) -> None:
    with client_with(demo_dir, tmp_path) as client:
        headers = {
            "Authorization": f"Bearer {token(dept='market_supervision', sub='officer-7', clearance=3)}",
            "X-Purpose-Of-Use": "law_enforcement",
            "X-Case-Ref": "CASE-2026-0042",
        }
        body = client.post("/graphql", json={"query": "query Dossier " + QUERY}, headers=headers).json()
    ids = [n["id"] for n in body["data"]["creditRecords"]["nodes"]]

    async def read() -> list[AuditRecord]:
        trail = AuditTrail(f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}")
        await trail.open()
        try:
            assert (await trail.verify()).ok
            return await trail.records()
        finally:
            await trail.aclose()

    [record] = asyncio.run(read())
    entry = record.entry
    assert (entry.subject, entry.department, entry.purpose, entry.case_ref) == (
        "officer-7",
        "market_supervision",
        "law_enforcement",
        "CASE-2026-0042",
    )
    assert entry.operation_name == "Dossier" and entry.outcome == "ok"
    assert list(entry.record_keys["CreditRecord"]) == ids
    assert "CreditRecord.decisionNumber" in entry.coordinates and entry.policy_revision


class SlowCredit(CreditConnector):
    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        await asyncio.sleep(5)
        return []


def test_slow_connector_yields_connector_unavailable_and_the_rest_arrives(demo_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    settings.connectors["credit"]["timeout_s"] = 0.2
    connector = SlowCredit(f"sqlite+aiosqlite:///{demo_dir / 'credit.sqlite'}")
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        uscc = conn.execute("SELECT uscc FROM credit_subjects LIMIT 1").fetchone()[0]
    with TestClient(create_app(settings, connectors={"credit": connector})) as client:
        query = '{ gatewayVersion enterprise(uscc: "%s") { uscc } creditRecords(first: 1) { nodes { id } } }' % uscc
        body = client.post("/graphql", json={"query": query}).json()
    assert body["data"]["gatewayVersion"] and body["data"]["enterprise"] is None
    assert len(body["data"]["creditRecords"]["nodes"]) == 1
    assert [e["extensions"]["code"] for e in body["errors"]] == ["CONNECTOR_UNAVAILABLE"]


def test_max_rows_zero_returns_nothing(demo_dir: Path, tmp_path: Path, token: TokenFactory) -> None:
    body = run(demo_dir, tmp_path, token, lambda _: {**ALLOW_ALL, "obligations": {"max_rows": 0}})
    assert body["data"]["creditRecords"]["nodes"] == []
