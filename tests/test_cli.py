"""The ``citygraph`` command line: token, sdl, demo-data, audit verify."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from audit import AuditEntry, AuditTrail
from gateway import cli
from tests.conftest import SECRET

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CITYGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CITYGRAPH_AUTH__SECRET", SECRET)


def test_token_mints_a_verifiable_dev_token() -> None:
    result = runner.invoke(
        cli,
        [
            "token",
            "--dept",
            "market_supervision",
            "--roles",
            "staff,district_officer",
            "--districts",
            "330203,330205",
            "--clearance",
            "3",
            "--sub",
            "alice",
        ],
    )
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"], audience="citygraph")
    assert claims["dept"] == "market_supervision" and claims["districts"] == ["330203", "330205"]
    assert claims["roles"] == ["staff", "district_officer"] and claims["clearance"] == 3 and claims["sub"] == "alice"


def test_token_refuses_bad_districts() -> None:
    result = runner.invoke(cli, ["token", "--districts", "ningbo"])
    assert result.exit_code != 0


def test_sdl_shows_classification_levels() -> None:
    result = runner.invoke(cli, ["sdl"])
    assert result.exit_code == 0, result.output
    assert "directive @classification(level: Level!, pi: PICategory" in result.stdout
    assert "legalRepIdNumber: String @classification(level: L3, pi: IDENTITY)" in result.stdout
    assert "统一社会信用代码" in result.stdout


def test_demo_data_and_if_missing(tmp_path: Path) -> None:
    first = runner.invoke(cli, ["demo-data", "--scale", "40", "--out", str(tmp_path / "d")])
    assert first.exit_code == 0 and "40 enterprises" in first.stdout
    again = runner.invoke(cli, ["demo-data", "--scale", "40", "--out", str(tmp_path / "d"), "--if-missing"])
    assert again.exit_code == 0 and "present" in again.stdout


def test_audit_verify_reports_an_edited_row(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    url = f"sqlite+aiosqlite:///{path}"

    async def write() -> None:
        async with AuditTrail(url) as trail:
            for i in range(5):
                await trail.append(
                    AuditEntry(
                        request_id=f"r{i}",
                        subject="alice",
                        department="market_supervision",
                        purpose="law_enforcement",
                        case_ref=None,
                        operation_name="Q",
                        document_hash="ab" * 32,
                        coordinates=("Query.creditRecords",),
                        record_keys={"CreditRecord": (str(i),)},
                        policy_revision="r1",
                        outcome="ok",
                        classification=2,
                    )
                )

    asyncio.run(write())
    ok = runner.invoke(cli, ["audit", "verify", "--url", url])
    assert ok.exit_code == 0, ok.output
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit_log SET subject = 'mallory' WHERE seq = 3")
    broken = runner.invoke(cli, ["audit", "verify", "--url", url])
    assert broken.exit_code == 1 and "3" in broken.output


def test_audit_export_jsonl_and_csv_with_filters(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"

    async def write() -> None:
        async with AuditTrail(url) as trail:
            for i, subject in enumerate(["alice", "bob", "alice"]):
                await trail.append(
                    AuditEntry(
                        request_id=f"r{i}",
                        subject=subject,
                        department="market_supervision",
                        purpose="law_enforcement",
                        case_ref="C-1" if i else None,
                        operation_name="Q",
                        document_hash="ab" * 32,
                        coordinates=("Query.creditRecords",),
                        record_keys={"CreditRecord": (str(i), "91330203MA2C4CE03N")},
                        policy_revision="r1",
                        outcome="ok",
                        classification=2,
                    )
                )

    asyncio.run(write())
    out = tmp_path / "alice.jsonl"
    result = runner.invoke(cli, ["audit", "export", "--url", url, "--subject", "alice", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in rows] == [1, 3] and rows[0]["record_keys"]["CreditRecord"][0] == "0"
    csv_out = tmp_path / "x.csv"
    by_key = runner.invoke(
        cli, ["audit", "export", "--url", url, "--record-key", "1", "--format", "csv", "--out", str(csv_out)]
    )
    assert by_key.exit_code == 0 and len(csv_out.read_text().splitlines()) == 2  # header + seq 2


def test_serve_gives_uvicorn_the_log_level_and_access_log_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``serve`` hands uvicorn (the replicas test runs real servers with the access log on and off)."""
    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    result = runner.invoke(cli, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert (seen["log_level"], seen["access_log"], seen["port"]) == ("info", False, 8123)
    monkeypatch.setenv("CITYGRAPH_LOG_LEVEL", "warning")
    monkeypatch.setenv("CITYGRAPH_ACCESS_LOG", "true")
    assert runner.invoke(cli, ["serve"]).exit_code == 0
    assert (seen["log_level"], seen["access_log"]) == ("warning", True)
