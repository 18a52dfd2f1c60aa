"""``citygraph policy``: lint, test, eval, bundle and explain from the command line."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway import cli

runner = CliRunner()
REGO = Path(__file__).resolve().parent.parent.parent / "policies" / "rego"


def copy_rego(tmp_path: Path) -> Path:
    target = tmp_path / "rego"
    target.mkdir()
    for source in REGO.iterdir():
        if source.is_file():
            (target / source.name).write_bytes(source.read_bytes())
    return target


def test_lint_passes_on_the_city_policies_and_fails_on_v0(tmp_path: Path) -> None:
    assert runner.invoke(cli, ["policy", "lint", "--dir", str(REGO)]).exit_code == 0
    bad = copy_rego(tmp_path)
    (bad / "extra.rego").write_text("package citygraph.extra\n\nallow { true }\n")
    result = runner.invoke(cli, ["policy", "lint", "--dir", str(bad)])
    assert result.exit_code == 1 and "extra.rego" in result.output


def test_test_runs_every_department_and_fails_when_one_fails(tmp_path: Path) -> None:
    ok = runner.invoke(cli, ["policy", "test", "--dir", str(REGO)])
    assert ok.exit_code == 0 and "PASS: " in ok.output and "FAIL" not in ok.output
    only = runner.invoke(cli, ["policy", "test", "--dir", str(REGO), "--run", "license_test", "-v"])
    assert only.exit_code == 0 and "license_test" in only.output and "credit_test" not in only.output
    broken = copy_rego(tmp_path)
    (broken / "credit_test.rego").write_text(
        (broken / "credit_test.rego").read_text() + "\ntest_always_fails if {\n\t1 == 2\n}\n"
    )
    failed = runner.invoke(cli, ["policy", "test", "--dir", str(broken)])
    assert failed.exit_code == 1 and "test_always_fails: FAIL" in failed.output


def test_no_test_ran_is_a_failure() -> None:
    result = runner.invoke(cli, ["policy", "test", "--dir", str(REGO), "--run", "no_such_test_anywhere"])
    assert result.exit_code == 1


def test_eval_prints_the_validated_decision(tmp_path: Path) -> None:
    document: dict[str, object] = {
        "subject": {"id": "anonymous", "department": "", "roles": [], "districts": [], "clearance": 1,
                    "authenticated": False, "issuer": ""},
        "action": "read", "purpose": None, "case_ref": None,
        "resource": {"connector": "credit", "type": "CreditRecord", "classification": 2,
                     "fields": [{"coordinate": "CreditRecord.amount", "level": 2, "pi": None}]},
        "operation": {"type": "query", "name": None, "coordinates": [], "args": {}, "depth": 1},
        "context": {"now_ns": 1, "today": "2026-11-27", "request_id": "r"},
    }  # fmt: skip
    path = tmp_path / "input.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(cli, ["policy", "eval", "--input", str(path), "--dir", str(REGO)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    assert out["decision"]["allow"] is True and out["decision"]["fields"]["CreditRecord.amount"]["action"] == "deny"


def test_bundle_has_a_manifest_with_revision_and_no_tests(tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    result = runner.invoke(cli, ["policy", "bundle", "--dir", str(REGO), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(".manifest").read())  # type: ignore[union-attr]
    assert manifest["revision"] and "citygraph" in manifest["roots"]
    assert "/credit.rego" in names and "/data.json" in names and not any(n.endswith("_test.rego") for n in names)


@pytest.fixture
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CITYGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CITYGRAPH_AUTH__SECRET", "s" * 40)


@pytest.mark.usefixtures("_env")
def test_explain_reports_masks_denials_and_the_district_filter(tmp_path: Path) -> None:
    query = tmp_path / "q.graphql"
    query.write_text("{ creditRecords { nodes { title amount legalRepIdNumber internalNote } } }")
    result = runner.invoke(
        cli, ["policy", "explain", str(query), "--as", "market_supervision,district_officer,330203|330205,2", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    actions = {c["coordinate"]: (c["action"], c["code"] or c["mask"]) for c in out["coordinates"]}
    assert actions["CreditRecord.title"] == ("allow", None)
    assert actions["CreditRecord.legalRepIdNumber"] == ("mask", "keep 3+4")
    assert actions["CreditRecord.internalNote"] == ("deny", "FORBIDDEN")
    [records] = [t for t in out["types"] if t["type"] == "CreditRecord"]
    assert records["filter"]["value"] == ["330203", "330205"] and records["reasons"]
    assert out["revision"]
