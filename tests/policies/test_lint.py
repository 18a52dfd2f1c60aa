"""The Rego lint refuses what regopy gets wrong or crashes on, and nothing else in our policies."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from policies.lint import LintIssue, defined_functions, lint_bundle, lint_module, strip_comments_and_strings
from policies.regotest import read_sources

REGO_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"


def messages(source: str) -> list[str]:
    return [issue.message for issue in lint_module("m.rego", "package p\n" + source)]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("allow { true }\n", "rule body without 'if'"),
        ("deny[msg] { msg := 1 }\n", "must use 'contains'"),
        ("deny[msg] if { msg := 1 }\n", "must use 'contains'"),
        ("test_cases[note] if { some note in [1] }\n", "must use 'contains'"),
        ("v := x { x := 1 }\n", "rule body without 'if'"),
        ("v := 1 if { input.a } else { true }\n", "rule body without 'if'"),
        ("t if { x == 1 with data.x as 2 }\n", "'with data.' is forbidden"),
        ("t if { allow with input as {} }\n", "'with input as' is forbidden"),
        ("r := 1\nt if { allow with input.a as r }\n", "bind it to a local variable"),
        ("t if { allow with input.a as input.b }\n", "bind it to a local variable"),
        ("t if { allow with input.a as data.fixtures.x }\n", "bind it to a local variable"),
        (
            "import data.fixtures.alice\nt if { allow with input.subject as alice }\n",
            "bind it to a local variable",
        ),
        ('r := http.send({"method": "get", "url": "http://x"})\n', "http.send reaches the network"),
        ('t if net.cidr_contains("10.0.0.0/8", input.ip)\n', "net.* builtins are missing"),
        ('t if graphql.parse(input.q, "")\n', "graphql.*"),
        ("t if json.match_schema(input, {})\n", "json.match_schema"),
        ('t if trace("x")\n', "trace is missing"),
        ("r := opa.runtime()\n", "opa.runtime"),
        ("r := rego.metadata.rule()\n", "rego.metadata"),
        ('t := time.parse_rfc3339_ns("2026-11-27T00:00:00Z")\n', "mis-parses 'Z'"),
        ("t if foo.bar(1)\n", "not a function in this bundle nor a builtin"),
        ("t if data.other.f(1)\n", "not a function in this bundle nor a builtin"),
    ],
)
def test_each_refusal(source: str, fragment: str) -> None:
    found = messages(source)
    assert any(fragment in message for message in found), found


def test_missing_package_line() -> None:
    assert lint_module("m.rego", "allow := true\n") == [LintIssue("m.rego", 1, "missing 'package' line")]


def test_issues_carry_the_line_of_the_offence() -> None:
    issues = lint_module("m.rego", "package p\n\n# a comment\nallow { true }\n")
    assert [(i.path, i.line) for i in issues] == [("m.rego", 4)]
    assert str(issues[0]).startswith("m.rego:4: ")


def test_comments_and_strings_are_not_scanned() -> None:
    source = (
        "package p\n"
        "# http.send({}) with data.x as 1 allow { true }\n"
        'msg := "net.cidr_contains( with data.x as y { }"\n'
        "raw := `time.parse_rfc3339_ns(\n trace( with input as `\n"
        'escaped := "a \\" http.send("\n'
    )
    assert lint_module("m.rego", source) == []


def test_stripping_keeps_offsets_and_lines() -> None:
    source = 'a := "x#y" # c\nb := `m\nn`\n'
    stripped = strip_comments_and_strings(source)
    assert len(stripped) == len(source)
    assert stripped.count("\n") == source.count("\n")
    assert "x" not in stripped and "c" not in stripped.split("\n")[0][10:]


@pytest.mark.parametrize(
    "source",
    [
        "allow if { true }\n",
        'deny contains msg if { msg := sprintf("%v", [input.a]) }\n',
        'decision := {"allow": true, "filter": {}} if input.a\n',
        'default d := {"allow": false}\n',
        'v := "a" if { input.x } else := {"k": 1} if { input.y } else := "z"\n',
        "f(x) := y if { y := object.union(x, {}) }\nt if f({})\n",
        "t if every x in input.xs { x > 0 }\n",
        't if input.a in {"x", "y"}\n',
        "p[k] := v if { some k, v in input.m }\n",
        ('t if { v := {"a": 1}; allow with input.a as v with input.b as "s" with input.c as f(1) }\nf(x) := x\n'),
        "t if regex.match(`^\\d+$`, input.a)\n",
        't if startswith(input.a, "x")\n',
    ],
)
def test_valid_v1_is_accepted(source: str) -> None:
    assert messages(source) == []


def test_user_functions_resolve_through_data_and_imports_in_a_bundle() -> None:
    files = {
        "lib.rego": "package lib.util\nmask(s) := s\n",
        "a.rego": (
            "package a\n"
            "import data.lib.util\n"
            "import data.lib.util as u\n"
            'x := util.mask("a")\n'
            'y := u.mask("b")\n'
            'z := data.lib.util.mask("c")\n'
        ),
    }
    assert lint_bundle(files) == []
    # On its own, a module only knows the functions it defines.
    assert [i.line for i in lint_module("a.rego", files["a.rego"])] == [4, 5, 6]
    assert defined_functions(files["lib.rego"]) == {"lib.util.mask"}


def test_the_shipped_policies_are_clean() -> None:
    modules, _ = read_sources(REGO_DIR)
    assert modules and lint_bundle(modules) == []


def test_lint_issue_is_frozen() -> None:
    issue = LintIssue("m.rego", 1, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.line = 2  # type: ignore[misc]


def test_a_function_name_shared_by_two_packages_is_refused() -> None:
    # regopy 1.5.2 segfaults compiling a bundle where two packages define the same function name.
    a = "package citygraph.a_test\n\ndecide(x) := y if {\n\ty := x\n}\n"
    b = "package citygraph.b_test\n\ndecide(x) := y if {\n\ty := x\n}\n"
    issues = lint_bundle({"a_test.rego": a, "b_test.rego": b})
    assert any("decide" in issue.message for issue in issues)
    assert not lint_bundle({"a_test.rego": a})
