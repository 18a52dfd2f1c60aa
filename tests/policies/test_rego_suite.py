"""The Rego tests in policies/rego all pass (one pytest case each), and the runner judges honestly."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import regotest
from policies.regotest import discover, run_sources, run_tests

REGO_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
DISCOVERED = discover(REGO_DIR)
#: A floor, so deleting tests (or breaking discovery) cannot pass silently.
MIN_TESTS = 30


@pytest.fixture(scope="module")
def results() -> dict[str, regotest.TestResult]:
    return {result.full_name: result for result in run_tests(REGO_DIR)}


def test_enough_tests_were_discovered_and_ran(results: dict[str, regotest.TestResult]) -> None:
    assert len(DISCOVERED) >= MIN_TESTS
    assert len(results) == len(DISCOVERED)
    packages = {test.package for test in DISCOVERED}
    assert packages == {
        "citygraph.authz_test",
        "citygraph.common_test",
        "citygraph.credit_test",
        "citygraph.gateway_test",
        "citygraph.license_test",
        "citygraph.spatial_test",
        "citygraph.video_test",
        "system.log_test",
    }


@pytest.mark.parametrize("test", DISCOVERED, ids=lambda t: f"{t.package}.{t.name}")
def test_rego(test: regotest.RegoTest, results: dict[str, regotest.TestResult]) -> None:
    result = results[f"data.{test.package}.{test.name}"]
    assert result.status == "PASS", f"{result.path}:{test.line}: {result.message}"


def test_isolated_mode_agrees_with_the_bundled_mode(results: dict[str, regotest.TestResult]) -> None:
    isolated = run_tests(REGO_DIR, run=r"credit_test\.test_(public|district|unknown)", isolated=True)
    assert len(isolated) >= 4
    assert all(r.status == results[r.full_name].status == "PASS" for r in isolated)


# --- the runner's own semantics, on small inline suites ---------------------------------------

POLICY = 'package p\nallow if input.user == "alice"\n'
SUITE = """package p_test

import data.p

test_pass if {
	u := "alice"
	p.allow with input.user as u
}

test_false := false

test_value := 5

test_undefined if {
	u := "bob"
	p.allow with input.user as u
}

test_strict_builtin_error if {
	startswith(1, "a")
}

todo_test_later if false

test_cases[note] if {
	some note in ["a", "b"]
}

test_helper(x) := x
"""


@pytest.fixture(scope="module")
def judged() -> dict[str, regotest.TestResult]:
    results = run_sources({"p.rego": POLICY, "p_test.rego": SUITE}, None)
    return {result.name: result for result in results}


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("test_pass", "PASS"),
        ("test_false", "FAIL"),
        ("test_value", "FAIL"),
        ("test_undefined", "FAIL"),
        ("test_strict_builtin_error", "ERROR"),
        ("todo_test_later", "SKIP"),
        ("test_cases", "ERROR"),  # parameterised: unsupported, never PASS
    ],
)
def test_statuses(judged: dict[str, regotest.TestResult], name: str, status: str) -> None:
    assert judged[name].status == status, judged[name].message


def test_functions_are_not_tests(judged: dict[str, regotest.TestResult]) -> None:
    assert "test_helper" not in judged


@pytest.mark.parametrize("isolated", [False, True])
def test_both_modes_judge_alike(judged: dict[str, regotest.TestResult], isolated: bool) -> None:
    again = run_sources({"p.rego": POLICY, "p_test.rego": SUITE}, None, isolated=isolated)
    assert {r.name: r.status for r in again} == {name: r.status for name, r in judged.items()}


def test_run_filter_selects_by_full_name() -> None:
    results = run_sources({"p.rego": POLICY, "p_test.rego": SUITE}, None, run=r"p_test\.test_(pass|false)$")
    assert [(r.name, r.status) for r in results] == [("test_pass", "PASS"), ("test_false", "FAIL")]


def test_a_module_that_does_not_parse_errors_every_test() -> None:
    results = run_sources({"p.rego": "package p\nallow if {\n", "p_test.rego": SUITE}, None, run="test_pass")
    assert [r.status for r in results] == ["ERROR"]
    assert "do not load" in results[0].message


def test_data_json_is_loaded_and_unicode_escapes_are_decoded(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text('package p\nname := data.names.a\nok if name == "执法"\n', encoding="utf-8")
    (tmp_path / "p_test.rego").write_text("package p_test\nimport data.p\ntest_ok if p.ok\n", encoding="utf-8")
    # json.dump's default \\u escapes: regopy would keep them as literal text unless re-encoded.
    (tmp_path / "data.json").write_text('{"names": {"a": "\\u6267\\u6cd5"}}', encoding="utf-8")
    assert [(r.name, r.status) for r in run_tests(tmp_path)] == [("test_ok", "PASS")]


def test_only_test_files_are_searched_for_tests(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text("package p\ntest_not_a_test := false\n", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "q_test.rego").write_text("package q_test\ntest_a := true\ntest_a := true\n", encoding="utf-8")
    found = discover(tmp_path)
    assert [(t.path, t.package, t.name, t.line) for t in found] == [("sub/q_test.rego", "q_test", "test_a", 2)]
