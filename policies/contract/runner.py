"""Replay the policy contract cases (OPA conformance-test YAML) on the embedded engine or through OPA.

A case file is ``cases: [{note, modules?, data?, input?, query, want_result}]`` (see the header of
``cases.yaml``). ``query`` must be ``data.<a.b.c> = <var>``; ``want_result`` is the list of binding
sets, ``[{<var>: <value>}]`` or ``[]`` for undefined. Two ways to run, same cases:

* ``engine="embedded"``: evaluate with regopy (``RawEvaluator``) and compare the *raw* result to
  ``want_result`` exactly (``true`` is not ``1``; numbers compare by value). A case without
  ``modules`` uses the city's bundle (``rego_dir``); with ``modules`` (a list of sources) and
  ``data``, it gets a bundle of its own.
* ``engine="opa"``: ask ``OpaEngine`` at ``url`` (the harness in tests, a real OPA in staging) and
  compare the *validated* decision with ``parse_decision(want)``: ``allow``, deny ``code``,
  ``fields``, ``filter`` and ``obligations`` (``reasons`` are log text). A running OPA serves one
  bundle, so cases with their own ``modules`` or ``data`` are SKIP, as are cases without ``input``
  (``OpaEngine`` always sends one).

Outcomes: PASS, FAIL (the answer differs), ERROR (the case is malformed or could not be evaluated),
SKIP. ``contract_command`` prints one line per case and returns a process exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from policies.decision import Decision, parse_decision
from policies.opa import DEFAULT_TOKEN_ENV, OpaEngine, OpaSettings
from policies.opa_harness import RawEvaluator
from policies.regotest import read_sources, to_rego_json

CaseStatus = Literal["PASS", "FAIL", "ERROR", "SKIP"]
Engine = Literal["embedded", "opa"]

#: The city's policies and its contract cases.
REGO_DIR = Path(__file__).resolve().parents[1] / "rego"
CASES_PATH = Path(__file__).resolve().parent / "cases.yaml"
#: A staging OPA is across a network: allow more than a decision's usual budget.
CONTRACT_TIMEOUT_S = 5.0

_QUERY = re.compile(r"^\s*data\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*=\s*([A-Za-z_]\w*)\s*$")


class ContractError(ValueError):
    """The case file cannot be read as contract cases at all."""


@dataclass(frozen=True, slots=True)
class ContractCase:
    """One case; ``problem`` is set (and the case reported ERROR) when it is malformed."""

    note: str
    query: str
    path: str = ""  # "a/b/c" for data.a.b.c
    var: str = ""
    has_input: bool = False
    input: object = None
    want_result: list[object] = field(default_factory=list)
    modules: list[str] | None = None
    data: object = None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case on one engine."""

    note: str
    status: CaseStatus
    message: str = ""

    @property
    def passed(self) -> bool:
        """PASS only; SKIP is not a pass."""
        return self.status == "PASS"


def load_cases(path: str | Path) -> list[ContractCase]:
    """Parse the YAML file; ``ContractError`` if it is not ``{cases: [...]}``, per-case problems kept."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("cases"), list):
        raise ContractError(f"{path}: expected a mapping with a 'cases' list")
    cases = [_case(index, raw) for index, raw in enumerate(document["cases"])]
    notes = [case.note for case in cases]
    duplicates = sorted({note for note in notes if notes.count(note) > 1})
    if duplicates:
        raise ContractError(f"{path}: duplicate notes {duplicates}")
    return cases


def _case(index: int, raw: object) -> ContractCase:
    if not isinstance(raw, Mapping):
        return ContractCase(note=f"case #{index}", query="", problem="a case must be a mapping")
    note = raw.get("note")
    note = note if isinstance(note, str) and note else f"case #{index}"
    query = raw.get("query")
    want = raw.get("want_result")
    modules = raw.get("modules")
    base = ContractCase(note=note, query=str(query))
    if not isinstance(query, str) or (match := _QUERY.match(query)) is None:
        return _problem(base, "query must be 'data.<path> = <var>'")
    if not isinstance(want, list) or len(want) > 1 or not all(isinstance(row, Mapping) for row in want):
        # data.p = x has one binding set when defined, none when undefined
        return _problem(base, "want_result must be [] (undefined) or one binding set [{var: value}]")
    if modules is not None and not (isinstance(modules, list) and all(isinstance(m, str) for m in modules)):
        return _problem(base, "modules must be a list of Rego sources")
    if "want_error" in raw or "want_error_code" in raw or "input_term" in raw:
        return _problem(base, "want_error, want_error_code and input_term are not supported")
    try:  # YAML can hold what JSON cannot (dates, sets): such a case is malformed, not "different"
        for value in (raw.get("input"), raw.get("data"), want):
            to_rego_json(value)
    except (TypeError, ValueError) as exc:
        return _problem(base, f"not plain JSON: {exc}")
    return ContractCase(
        note=note,
        query=query,
        path=match.group(1).replace(".", "/"),
        var=match.group(2),
        has_input="input" in raw,
        input=raw.get("input"),
        want_result=list(want),
        modules=list(modules) if modules is not None else None,
        data=raw.get("data"),
    )


def _problem(case: ContractCase, problem: str) -> ContractCase:
    return ContractCase(note=case.note, query=case.query, problem=problem)


# --- comparing ----------------------------------------------------------------------------


def same_json(a: object, b: object) -> bool:
    """JSON equality as Rego sees it: ``true`` is not ``1``, ``1`` equals ``1.0``, key order is irrelevant."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    return text if len(text) <= 400 else text[:400] + "..."


def expected_decision(case: ContractCase) -> Decision:
    """What ``OpaEngine`` must return for the case: ``want_result`` through ``parse_decision``."""
    if not case.want_result:
        return Decision.deny("policy result undefined")
    row = case.want_result[0]
    return parse_decision(row.get(case.var) if isinstance(row, Mapping) else None)


def _decision_view(decision: Decision) -> dict[str, object]:
    """The parts of a decision the contract fixes (``reasons`` are log text, not contract)."""
    return {
        "allow": decision.allow,
        "code": None if decision.allow else decision.code,
        "fields": {
            coordinate: {
                "action": rule.action,
                "keep_prefix": rule.keep_prefix,
                "keep_suffix": rule.keep_suffix,
                "replace": rule.replace,
                "code": rule.code,
            }
            for coordinate, rule in decision.fields.items()
        },
        "filter": decision.filter,
        "obligations": dict(decision.obligations),
    }


# --- running ------------------------------------------------------------------------------


def check_embedded(case: ContractCase, evaluator: RawEvaluator) -> CaseResult:
    """Evaluate the case with ``evaluator`` and compare the raw result with ``want_result``."""
    if case.problem:
        return CaseResult(case.note, "ERROR", case.problem)
    try:
        input_json = to_rego_json(case.input) if case.has_input else None
        defined, value = evaluator.evaluate(case.path, input_json)
    except Exception as exc:  # EvaluationError, RegoError, undecodable output
        return CaseResult(case.note, "ERROR", f"evaluation failed: {type(exc).__name__}: {exc}")
    got: list[object] = [{case.var: value}] if defined else []
    if same_json(got, case.want_result):
        return CaseResult(case.note, "PASS")
    return CaseResult(case.note, "FAIL", f"got {_show(got)}, want {_show(case.want_result)}")


async def check_opa(case: ContractCase, engine: OpaEngine) -> CaseResult:
    """Ask ``engine`` for the case's input and compare the validated decision with the expected one."""
    if case.problem:
        return CaseResult(case.note, "ERROR", case.problem)
    if case.modules is not None or case.data is not None:
        return CaseResult(case.note, "SKIP", "brings its own modules or data: embedded engine only")
    if not case.has_input:
        return CaseResult(case.note, "SKIP", "no input: OpaEngine always sends one")
    if case.path != "citygraph/authz/decision":
        return CaseResult(case.note, "SKIP", f"OpaEngine asks data.citygraph.authz.decision, not data.{case.path}")
    if not isinstance(case.input, Mapping):
        return CaseResult(case.note, "SKIP", "input is not an object: OpaEngine sends input documents only")
    decision = await engine.decide(case.input)
    want, got = _decision_view(expected_decision(case)), _decision_view(decision)
    if same_json(got, want):
        return CaseResult(case.note, "PASS")
    detail = f" ({'; '.join(decision.reasons)})" if decision.code == "POLICY_UNAVAILABLE" else ""
    return CaseResult(case.note, "FAIL", f"got {_show(got)}{detail}, want {_show(want)}")


def _evaluator_for(case: ContractCase, city: RawEvaluator, rego_dir: str | Path) -> RawEvaluator:
    """The city's evaluator, or one of the case's own: its modules, or the city's policies over its data."""
    if case.modules is None and case.data is None:
        return city
    if case.modules is not None:
        modules = {f"case_{index}.rego": source for index, source in enumerate(case.modules)}
    else:
        modules, _ = read_sources(rego_dir)
    return RawEvaluator(modules, json.dumps(case.data) if case.data is not None else None)


async def run_opa_cases(cases: Sequence[ContractCase], settings: OpaSettings) -> list[CaseResult]:
    """Every case through one ``OpaEngine`` (closed afterwards), one after the other."""
    engine = OpaEngine(settings)
    try:
        return [await check_opa(case, engine) for case in cases]
    finally:
        await engine.aclose()


def settings_from_env(url: str) -> OpaSettings:
    """Settings for the contract run at ``url``: the bearer token from ``CITYGRAPH_OPA_TOKEN`` when set,
    and ``CITYGRAPH_OPA_CA_FILE`` / ``CITYGRAPH_OPA_CLIENT_CERT`` / ``CITYGRAPH_OPA_CLIENT_KEY`` for TLS."""

    def path(name: str) -> Path | None:
        value = os.environ.get(name)
        return Path(value) if value else None

    return OpaSettings.from_url(
        url,
        token_env=DEFAULT_TOKEN_ENV if os.environ.get(DEFAULT_TOKEN_ENV) else None,
        ca_file=path("CITYGRAPH_OPA_CA_FILE"),
        client_cert=path("CITYGRAPH_OPA_CLIENT_CERT"),
        client_key=path("CITYGRAPH_OPA_CLIENT_KEY"),
        timeout_s=CONTRACT_TIMEOUT_S,
        breaker_failures=1_000_000,  # a contract run reports every case; it never short-circuits
    )


def run_cases(
    path: str | Path = CASES_PATH,
    *,
    engine: Engine = "embedded",
    url: str | None = None,
    settings: OpaSettings | None = None,
    rego_dir: str | Path = REGO_DIR,
) -> list[CaseResult]:
    """Run every case of ``path`` on one engine; ``ContractError`` if the file is unreadable.

    ``engine="opa"`` needs ``url`` (settings from ``settings_from_env``) or full ``settings``.
    Synchronous: call it from threads or scripts, not from inside a running event loop.
    """
    cases = load_cases(path)
    if engine == "opa":
        if settings is None:
            if url is None:
                raise ValueError("engine='opa' needs url or settings")
            settings = settings_from_env(url)
        return asyncio.run(run_opa_cases(cases, settings))
    if engine != "embedded":
        raise ValueError(f"unknown engine {engine!r}")
    city = RawEvaluator.from_dir(rego_dir)
    results: list[CaseResult] = []
    for case in cases:
        try:
            evaluator = _evaluator_for(case, city, rego_dir)
        except Exception as exc:  # the case's own modules or data do not load
            results.append(CaseResult(case.note, "ERROR", f"modules or data do not load: {type(exc).__name__}"))
            continue
        results.append(check_embedded(case, evaluator))
    return results


def contract_command(cases_path: str | Path, url: str | None) -> int:
    """Print PASS/FAIL/ERROR/SKIP per case and a summary; 0 only if nothing failed and something passed.

    ``url=None`` runs the embedded engine; an OPA URL runs the cases through ``OpaEngine``.
    """
    try:
        results = run_cases(cases_path, engine="opa" if url else "embedded", url=url)
    except (ContractError, ValueError) as exc:
        print(f"contract: {exc}", file=sys.stderr)
        return 2
    for result in results:
        detail = f"  {result.message}" if result.message and result.status != "PASS" else ""
        print(f"{result.status} {result.note}{detail}")
    counts = {status: sum(r.status == status for r in results) for status in ("PASS", "FAIL", "ERROR", "SKIP")}
    where = url or "embedded engine"
    print(f"{counts['PASS']} passed, {counts['FAIL'] + counts['ERROR']} failed, {counts['SKIP']} skipped ({where})")
    if counts["PASS"] == 0:
        print("contract: no case passed", file=sys.stderr)
    return 0 if counts["FAIL"] == counts["ERROR"] == 0 and counts["PASS"] > 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m policies.contract.runner [--cases PATH] [--url http://opa:8181]``."""
    parser = argparse.ArgumentParser(prog="python -m policies.contract.runner", description=main.__doc__)
    parser.add_argument("--cases", type=Path, default=CASES_PATH, help="the YAML case file")
    parser.add_argument("--url", default=None, help="an OPA base URL; without it, the embedded engine")
    args = parser.parse_args(argv)
    return contract_command(args.cases, args.url)


__all__ = [
    "CASES_PATH",
    "REGO_DIR",
    "CaseResult",
    "CaseStatus",
    "ContractCase",
    "ContractError",
    "Engine",
    "check_embedded",
    "check_opa",
    "contract_command",
    "expected_decision",
    "load_cases",
    "run_cases",
    "run_opa_cases",
    "same_json",
    "settings_from_env",
]


if __name__ == "__main__":
    sys.exit(main())
