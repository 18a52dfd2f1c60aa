"""A small ``opa test`` for regopy: discover ``test_`` rules in ``*_test.rego`` and evaluate them.

Conventions follow ``opa test``: a test is a depth-0 rule whose name starts with ``test_`` in a
file named ``*_test.rego``; ``todo_test_`` rules are reported SKIP. Every module and ``data.json``
are loaded, with strict builtin errors. Two ways to evaluate, same outcomes:

* default: compile once into a bundle with one entrypoint per test, then evaluate each entrypoint
  in a fresh evaluation interpreter (about 1 ms a test; compiling costs ~0.2 s once);
* ``isolated=True``: a fresh interpreter per test, queried with ``x := data.<pkg>.<rule>``
  (recompiles everything per test, ~0.2 s each; useful to rule out cross-test effects).

Outcomes:

* PASS  -- the value is literally ``true``;
* FAIL  -- undefined, or any other value;
* ERROR -- the modules or data do not load or compile, evaluation reports an error, or regopy's
  output cannot be decoded; also every parameterised test ``test_x[note]``, because regopy
  returns only the passing notes and this runner does not know which notes were declared.

Sources are read from ``rego_dir``: every ``*.rego`` below it (paths relative, ``/``-separated)
and the top-level ``data.json`` only. Rego that crashes regopy (see ``policies.lint``) crashes
this runner too: callers that must survive run it in a child process, as the embedded engine does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from regopy import Interpreter, LogLevel, Output, RegoError

from policies.lint import depth0_lines, package_of

TestStatus = Literal["PASS", "FAIL", "ERROR", "SKIP"]

_TEST_HEAD = re.compile(r"^((?:todo_)?test_\w*)(.*)$")
_ERRORMSG = re.compile(r"\(errormsg \d+:([^\n]*)\)")
_ERRORAT = re.compile(r"\(error \d+:([^|\n]+)\|")


@dataclass(frozen=True, slots=True)
class RegoTest:
    """One discovered test rule."""

    path: str
    package: str
    name: str
    line: int
    parameterised: bool = False

    @property
    def skipped(self) -> bool:
        """``todo_test_`` rules are reported SKIP and never evaluated."""
        return self.name.startswith("todo_")

    @property
    def query(self) -> str:
        """The query that evaluates this test."""
        return f"x := data.{self.package}.{self.name}"


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of one test; ``duration`` is in seconds."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    package: str
    name: str
    status: TestStatus
    duration: float
    message: str = ""
    path: str = ""

    @property
    def full_name(self) -> str:
        """``data.<pkg>.<rule>``, as ``opa test`` prints it."""
        return f"data.{self.package}.{self.name}"


def describe_rego_error(exc: BaseException) -> str:
    """A one-line summary of a ``RegoError`` (its payload is an S-expression)."""
    text = str(exc.args[0]) if exc.args else str(exc)
    messages = list(dict.fromkeys(_ERRORMSG.findall(text)))
    files = list(dict.fromkeys(_ERRORAT.findall(text)))
    if not messages:
        return f"{type(exc).__name__}: {text.strip()[:200]}"
    where = f" in {', '.join(files)}" if files else ""
    return f"{'; '.join(messages)}{where}"


def read_sources(rego_dir: str | Path) -> tuple[dict[str, str], str | None]:
    """Every ``*.rego`` below ``rego_dir`` (relative path -> text) and the top-level ``data.json`` text."""
    root = Path(rego_dir)
    modules = {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.rego"))
        if path.is_file()
    }
    data_path = root / "data.json"
    data_json = data_path.read_text(encoding="utf-8") if data_path.is_file() else None
    return modules, data_json


def is_test_module(path: str) -> bool:
    """Whether a module is a test file (never part of a serving bundle)."""
    return path.endswith("_test.rego")


def discover_sources(modules: Mapping[str, str]) -> list[RegoTest]:
    """The tests defined in the ``*_test.rego`` modules, in file and line order."""
    tests: list[RegoTest] = []
    for path in sorted(modules):
        if not is_test_module(path):
            continue
        package = package_of(modules[path])
        if package is None:
            continue
        seen: set[str] = set()
        for number, text in depth0_lines(modules[path]):
            match = _TEST_HEAD.match(text)
            if not match or match.group(1) in seen:
                continue  # incremental definitions of one rule are one test
            rest = match.group(2).lstrip()
            if rest.startswith("("):
                continue  # a function, not a test
            seen.add(match.group(1))
            tests.append(RegoTest(path, package, match.group(1), number, parameterised=rest.startswith("[")))
    return tests


def discover(rego_dir: str | Path) -> list[RegoTest]:
    """The tests under ``rego_dir``."""
    modules, _ = read_sources(rego_dir)
    return discover_sources(modules)


def new_interpreter() -> Interpreter:
    """An interpreter configured the way CityGraph always uses one: strict and quiet."""
    rego = Interpreter()
    rego.strict_built_in_errors = True
    rego.log_level = LogLevel.NONE
    return rego


def to_rego_json(value: object) -> str:
    """Serialise a document for regopy: raw UTF-8, no NaN/Infinity.

    regopy keeps ``\\uXXXX`` escapes as literal text (``"\\u0041" != "A"``, ``count`` sees 6), so
    non-ASCII must go in unescaped (``ensure_ascii=False``). Raises ``ValueError`` for NaN/Infinity
    and lone surrogates, ``TypeError`` for values JSON cannot represent.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # UnicodeEncodeError (a ValueError) on lone surrogates
    return text


def _loaded(modules: Mapping[str, str], data_json: str | None) -> Interpreter:
    """A fresh interpreter with the data and modules; ``RegoError``/``ValueError`` if they do not load."""
    rego = new_interpreter()
    if data_json is not None:
        data = json.loads(data_json)
        if not isinstance(data, dict):
            raise ValueError("data.json must hold a JSON object")
        rego.add_data_json(to_rego_json(data))  # re-encoded: data.json may contain \u escapes
    for path in sorted(modules):
        rego.add_module(path, modules[path])
    return rego


def _result(test: RegoTest, status: TestStatus, started: float, message: str = "") -> TestResult:
    return TestResult(test.package, test.name, status, time.perf_counter() - started, message, test.path)


def _judge(test: RegoTest, started: float, output: Output, value_of: Callable[[Output], object]) -> TestResult:
    if not output.ok():
        return _result(test, "ERROR", started, "evaluation error (strict builtin error or conflict)")
    if str(output) == "undefined" or not len(output):
        return _result(test, "FAIL", started, "undefined")
    value = value_of(output)
    if value is True:
        return _result(test, "PASS", started)
    return _result(test, "FAIL", started, f"value is {json.dumps(value)[:200]}, not true")


def _entrypoint(test: RegoTest) -> str:
    return f"{test.package.replace('.', '/')}/{test.name}"


def _first_expression(output: Output) -> object:
    expressions = output[0].expressions
    return expressions[0] if expressions else None


def _run_isolated(test: RegoTest, modules: Mapping[str, str], data_json: str | None) -> TestResult:
    started = time.perf_counter()
    try:
        output = _loaded(modules, data_json).query(test.query)
    except RegoError as exc:
        return _result(test, "ERROR", started, describe_rego_error(exc))
    except ValueError as exc:  # json.JSONDecodeError: regopy could not render an error
        return _result(test, "ERROR", started, f"undecodable engine output ({type(exc).__name__})")
    return _judge(test, started, output, lambda out: out[0].bindings.get("x"))


def _run_bundled(tests: list[RegoTest], modules: Mapping[str, str], data_json: str | None) -> list[TestResult]:
    started = time.perf_counter()
    try:
        bundle = _loaded(modules, data_json).build(None, [_entrypoint(test) for test in tests])
    except RegoError as exc:
        reason = f"modules do not compile: {describe_rego_error(exc)}"
        return [_result(test, "ERROR", started, reason) for test in tests]
    if not bundle.ok():
        return [_result(test, "ERROR", started, "modules do not compile (bundle not ok)") for test in tests]
    results: list[TestResult] = []
    for test in tests:
        started = time.perf_counter()
        try:
            output = new_interpreter().query_bundle_entrypoint(bundle, _entrypoint(test))
        except RegoError as exc:
            results.append(_result(test, "ERROR", started, describe_rego_error(exc)))
            continue
        except ValueError as exc:
            results.append(_result(test, "ERROR", started, f"undecodable engine output ({type(exc).__name__})"))
            continue
        results.append(_judge(test, started, output, _first_expression))
    return results


def run_sources(
    modules: Mapping[str, str], data_json: str | None, run: str | None = None, *, isolated: bool = False
) -> list[TestResult]:
    """Run the tests found in ``modules``; ``run`` is a regex searched in ``data.<pkg>.<rule>``."""
    pattern = re.compile(run) if run else None
    tests = [
        test
        for test in discover_sources(modules)
        if pattern is None or pattern.search(f"data.{test.package}.{test.name}")
    ]
    results: dict[RegoTest, TestResult] = {}
    for test in tests:
        if test.skipped:
            results[test] = _result(test, "SKIP", time.perf_counter())
        elif test.parameterised:
            message = "parameterised tests (test_x[note]) are not supported"
            results[test] = _result(test, "ERROR", time.perf_counter(), message)
    runnable = [test for test in tests if test not in results]
    if runnable:
        try:  # load once up front so a broken module reports one clear error for every test
            _loaded(modules, data_json)
        except (RegoError, ValueError) as exc:
            reason = f"modules or data do not load: {describe_rego_error(exc)}"
            results.update({t: TestResult(t.package, t.name, "ERROR", 0.0, reason, t.path) for t in runnable})
            runnable = []
    if isolated:
        results.update({test: _run_isolated(test, modules, data_json) for test in runnable})
    elif runnable:
        results.update(zip(runnable, _run_bundled(runnable, modules, data_json), strict=True))
    return [results[test] for test in tests]


def run_tests(rego_dir: str | Path, run: str | None = None, *, isolated: bool = False) -> list[TestResult]:
    """Run every test under ``rego_dir`` (see the module docstring for the rules)."""
    modules, data_json = read_sources(rego_dir)
    return run_sources(modules, data_json, run, isolated=isolated)


__all__ = [
    "RegoTest",
    "TestResult",
    "TestStatus",
    "describe_rego_error",
    "discover",
    "discover_sources",
    "is_test_module",
    "new_interpreter",
    "read_sources",
    "run_sources",
    "run_tests",
    "to_rego_json",
]
