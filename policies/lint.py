"""A line/regex based lint for Rego modules, run before any policy reaches regopy.

regopy 1.5.2 is lenient where OPA 1.x is strict and crashes or fails open on some constructs,
so every module is refused when it contains one of these (after comments and string literals
are blanked out, so text inside them never counts):

* no ``package`` line;
* a rule body without ``if`` (Rego v0 ``p { ... }``, ``p[x] { ... }``, ``p := v { ... }``,
  ``else { ... }``): regopy silently accepts v0 syntax that OPA 1.x rejects;
* a multi-value rule head ``p[x] if ...`` without ``contains``: in v1 that defines an *object*
  ``{x: true}``, not a set (this also refuses parameterised tests ``test_x[note]``);
* ``with data.`` anywhere: some ``with data.x as`` overrides segfault the engine;
* ``with input as`` (replacing the whole input): segfaults regopy 1.5.2 at compile time as soon as
  the rules it reaches call a builtin; override keys instead (``with input.subject as s``);
* a ``with ... as`` value that is a reference to ``input``, ``data``, a rule of the module or an
  imported name: regopy evaluates those to undefined (or crashes), so negative tests pass
  vacuously; bind the value to a local variable first;
* calls to builtins that are missing in the embedded engine or reach outside the process
  (``http.send``, ``net.*``, ``graphql.*``, ``json.match_schema``, ``json.verify_schema``,
  ``trace``, ``opa.runtime``, ``rego.metadata.*``): unknown builtins fail open when errors are
  not strict and make regopy's ``Output`` raise when the name is not a function at all;
* ``time.parse_rfc3339_ns``: mis-parses ``Z`` in this engine; policies get times from
  ``input.context``;
* any other dotted call ``a.b(`` that is neither a function defined in the bundle (called as
  ``data.<pkg>.<f>(`` or through an ``import data.<pkg> [as alias]``) nor a regopy builtin.

What it does not do: parse Rego. Rule heads are recognised at bracket depth 0 only, undotted
calls are not resolved (an undefined one fails the compile step instead), and a construct split
in unusual ways across lines may escape it. It is a guard in front of the child-process check,
not a replacement for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from regopy import Interpreter


@dataclass(frozen=True, slots=True)
class LintIssue:
    """One refusal: file, 1-based line and what is wrong."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


#: Builtins refused even where regopy reports them as available (exact names or ``prefix.*``).
_DENIED_CALLS: tuple[tuple[str, str], ...] = (
    ("http.send", "http.send reaches the network"),
    ("net.", "net.* builtins are missing in the embedded engine"),
    ("graphql.", "graphql.* builtins are missing; the gateway normalises operations in Python"),
    ("json.match_schema", "json.match_schema is missing in the embedded engine"),
    ("json.verify_schema", "json.verify_schema is missing in the embedded engine"),
    ("opa.runtime", "opa.runtime exposes the process environment"),
    ("rego.metadata.", "rego.metadata.* is missing in the embedded engine"),
    ("time.parse_rfc3339_ns", "time.parse_rfc3339_ns mis-parses 'Z' in regopy; use input.context times"),
    ("trace", "trace is missing in the embedded engine"),
)

_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([A-Za-z_][\w.]*)", re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+data\.([A-Za-z_][\w.]*)(?:[ \t]+as[ \t]+([A-Za-z_]\w*))?", re.MULTILINE)
_CALL = re.compile(r"(?<![\w.\]])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)[ \t]*\(")
_WITH_DATA = re.compile(r"\bwith\s+data\b")
_WITH_INPUT = re.compile(r"\bwith\s+input\s+as\b")
_WITH_VALUE = re.compile(r"\bwith\s+\S+\s+as\s+([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[^\]\n]*\])*)\s*(\(?)")
# A depth-0 line that starts a rule head: optional ``default``, then a (dotted) name.
_HEAD = re.compile(r"^(?:default[ \t]+)?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(.*)$")
_KEYWORDS = frozenset({"package", "import", "else", "some", "every", "not", "with", "as", "if", "contains"})
# Tokens after which a depth-0 ``{`` opens a literal value rather than a rule body.
_VALUE_BEFORE_BRACE = re.compile(r"(?:[:=!<>+\-*/&|]|\bin|\bif)\s*$")


def strip_comments_and_strings(source: str) -> str:
    """``source`` with comments and string contents blanked; newlines and offsets are kept.

    ``"..."`` strings become ``""`` padded with spaces, raw ```...``` strings likewise; ``#``
    comments become spaces up to the end of the line.
    """
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "#":
            end = source.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif ch == '"':
            # j stops on the closing quote, or on a newline / end of text for an unterminated string
            j = i + 1
            while j < n and source[j] not in '"\n':
                j += 2 if source[j] == "\\" and j + 1 < n and source[j + 1] != "\n" else 1
            j = min(j, n)
            closed = j < n and source[j] == '"'
            out.append('"' + " " * (j - i - 1) + ('"' if closed else ""))
            i = j + 1 if closed else j
        elif ch == "`":
            end = source.find("`", i + 1)
            end = n - 1 if end < 0 else end
            body = source[i + 1 : end]
            out.append("`" + re.sub(r"[^\n]", " ", body) + "`")
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)[:n]


def _line_of(code: str, offset: int) -> int:
    return code.count("\n", 0, offset) + 1


def _depth0_lines(code: str) -> Iterable[tuple[int, str, int]]:
    """Yield (line number, text, offset) for lines that start at bracket depth 0."""
    depth = 0
    offset = 0
    for number, text in enumerate(code.split("\n"), start=1):
        if depth == 0:
            yield number, text, offset
        for ch in text:
            if ch in "{[(":
                depth += 1
            elif ch in "}])":
                depth = max(0, depth - 1)
        offset += len(text) + 1


def _package(code: str) -> str | None:
    match = _PACKAGE.search(code)
    return match.group(1) if match else None


def package_of(source: str) -> str | None:
    """The module's package name, or ``None`` when it has no ``package`` line."""
    return _package(strip_comments_and_strings(source))


def depth0_lines(source: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines that start at bracket depth 0, comments and strings blanked."""
    return [(number, text) for number, text, _ in _depth0_lines(strip_comments_and_strings(source))]


def defined_functions(source: str) -> set[str]:
    """Fully qualified names (``pkg.f``) of the functions a module defines at depth 0."""
    code = strip_comments_and_strings(source)
    package = _package(code)
    if package is None:
        return set()
    names: set[str] = set()
    for _, text, _ in _depth0_lines(code):
        match = _HEAD.match(text)
        if match and match.group(1) not in _KEYWORDS and match.group(2).lstrip().startswith("("):
            names.add(f"{package}.{match.group(1)}")
    return names


def _imports(code: str) -> dict[str, str]:
    """Import alias -> imported data path (without ``data.``)."""
    aliases: dict[str, str] = {}
    for match in _IMPORT.finditer(code):
        target, alias = match.group(1), match.group(2)
        aliases[alias or target.rsplit(".", 1)[-1]] = target
    return aliases


def _denied(name: str) -> str | None:
    for pattern, reason in _DENIED_CALLS:
        if name == pattern or (pattern.endswith(".") and name.startswith(pattern)):
            return reason
    return None


def _check_bodies(path: str, code: str) -> list[LintIssue]:
    """Depth-0 ``{`` that opens a body without ``if``; multi-value heads without ``contains``."""
    issues: list[LintIssue] = []
    for number, text, _ in _depth0_lines(code):
        match = _HEAD.match(text)
        if not match or match.group(1) in _KEYWORDS:
            continue
        rest = match.group(2)
        if re.match(r"\s*\[[^\]]*\]\s*(?:if\b|\{|$)", rest):
            issues.append(LintIssue(path, number, f"multi-value rule '{match.group(1)}[...]' must use 'contains'"))
    depth = 0
    segment_start = 0
    for offset, ch in enumerate(code):
        if ch == "\n" and depth == 0:
            segment_start = offset + 1
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth = max(0, depth - 1)
        elif ch == "{":
            if depth == 0:
                segment = code[segment_start:offset]
                if not re.search(r"\bif\b", segment) and not _VALUE_BEFORE_BRACE.search(segment):
                    issues.append(LintIssue(path, _line_of(code, offset), "rule body without 'if' (Rego v0 syntax)"))
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
            if depth == 0:
                segment_start = offset + 1
    return issues


def _check_calls(path: str, code: str, functions: set[str], builtins: Interpreter) -> list[LintIssue]:
    issues: list[LintIssue] = []
    aliases = _imports(code)
    for match in _CALL.finditer(code):
        name = match.group(1)
        line = _line_of(code, match.start(1))
        reason = _denied(name)
        if reason is not None:
            issues.append(LintIssue(path, line, f"call to {name}(): {reason}"))
            continue
        if "." not in name:
            continue
        head, _, rest = name.partition(".")
        if head == "data":
            qualified = rest
        elif head in aliases:
            qualified = f"{aliases[head]}.{rest}"
        else:
            qualified = None
        if qualified is not None and qualified in functions:
            continue
        if not builtins.is_builtin(name):
            issues.append(LintIssue(path, line, f"call to {name}(): not a function in this bundle nor a builtin"))
    return issues


def _rule_names(code: str) -> set[str]:
    """First segment of every depth-0 rule head that is not a function."""
    names: set[str] = set()
    for _, text, _ in _depth0_lines(code):
        match = _HEAD.match(text)
        if match and match.group(1) not in _KEYWORDS and not match.group(2).lstrip().startswith("("):
            names.add(match.group(1).split(".", 1)[0])
    return names


def _check_with(path: str, code: str) -> list[LintIssue]:
    issues = [
        LintIssue(path, _line_of(code, m.start()), "'with data.' is forbidden (crashes regopy)")
        for m in _WITH_DATA.finditer(code)
    ]
    issues.extend(
        LintIssue(
            path,
            _line_of(code, m.start()),
            "'with input as' is forbidden (crashes regopy); override keys: 'with input.subject as s'",
        )
        for m in _WITH_INPUT.finditer(code)
    )
    refs = {"input", "data"} | _rule_names(code) | set(_imports(code))
    for match in _WITH_VALUE.finditer(code):
        if match.group(3) or match.group(1) not in refs:
            continue  # literals, local variables and function calls are evaluated correctly
        issues.append(
            LintIssue(
                path,
                _line_of(code, match.start(1)),
                f"'with ... as {match.group(1)}{match.group(2)}': regopy evaluates a rule/input/data "
                "reference here as undefined; bind it to a local variable first",
            )
        )
    return issues


def _lint(path: str, source: str, functions: set[str], builtins: Interpreter) -> list[LintIssue]:
    code = strip_comments_and_strings(source)
    issues: list[LintIssue] = []
    if _package(code) is None:
        issues.append(LintIssue(path, 1, "missing 'package' line"))
    issues.extend(_check_bodies(path, code))
    issues.extend(_check_with(path, code))
    issues.extend(_check_calls(path, code, functions, builtins))
    return sorted(issues, key=lambda issue: (issue.line, issue.message))


def lint_module(path: str, source: str) -> list[LintIssue]:
    """Lint one module on its own: only functions it defines itself count as user functions."""
    return _lint(path, source, defined_functions(source), Interpreter())


def lint_bundle(files: Mapping[str, str]) -> list[LintIssue]:
    """Lint every module of a bundle (path -> source); functions defined anywhere in it count."""
    functions: set[str] = set()
    for source in files.values():
        functions |= defined_functions(source)
    # One throwaway interpreter answers is_builtin(); interpreters are never shared across threads.
    builtins = Interpreter()
    issues: list[LintIssue] = []
    for path in sorted(files):
        issues.extend(_lint(path, files[path], functions, builtins))
    return issues + _shared_function_names(files)


def _shared_function_names(files: Mapping[str, str]) -> list[LintIssue]:
    """Refuse a function name defined in two packages: regopy 1.5.2 segfaults building such a bundle.

    (Observed: a helper ``decide(subject, type)`` in two ``*_test`` packages crashed the compiler;
    the same name for a plain rule does not.)
    """
    first: dict[str, str] = {}
    issues: list[LintIssue] = []
    for path in sorted(files):
        package = package_of(files[path])
        for qualified in sorted(defined_functions(files[path])):
            name = qualified.rsplit(".", 1)[-1]
            owner = first.setdefault(name, f"{package} ({path})")
            if not owner.startswith(f"{package} "):
                issues.append(
                    LintIssue(
                        path,
                        1,
                        f"function {name!r} is also defined in {owner}: rename one (the embedded "
                        "engine crashes on a function name shared across packages)",
                    )
                )
    return issues


__all__ = [
    "LintIssue",
    "defined_functions",
    "depth0_lines",
    "lint_bundle",
    "lint_module",
    "package_of",
    "strip_comments_and_strings",
]
