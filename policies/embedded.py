"""``EmbeddedEngine``: the ``PolicyEngine`` over regopy, in process.

Loading (``load()``, synchronous; call it through a worker thread from async code):

1. read every ``*.rego`` below ``rego_dir``, the top-level ``data.json`` and ``.manifest``;
2. lint all of them (``policies.lint``) and check the manifest (``rego_version`` 1, packages
   under ``roots``);
3. check in a *spawned child process*, with a timeout: build the serving bundle for
   ``ENTRYPOINT``, evaluate it once on ``{}`` (which must not allow), and run every test of the
   ``*_test.rego`` files (``policies.regotest``). regopy can segfault or hang on some Rego; then
   only the child dies;
4. build the serving bundle (non-test modules + data) in process and swap it in atomically,
   bumping the generation.

Any failure keeps the last good bundle and records the failed revision and reason (``status()``).
Until a first load succeeds every decision is a ``POLICY_UNAVAILABLE`` deny.

Evaluation: each executor thread owns a ``regopy.Interpreter`` (``threading.local``; a shared
interpreter segfaults), created with strict builtin errors and rebuilt when the generation
changes. All threads evaluate the one shared ``Bundle`` with ``query_bundle_entrypoint``, which
was verified safe across threads (the tests hammer it with 8 threads). Deny codes:

* ``POLICY_UNAVAILABLE``: no bundle, engine closed, engine error or exception, ``ok() == False``
  (strict builtin error, conflicting values), timeout;
* ``FORBIDDEN``: an *undefined* result (no rule granted anything; the same code
  ``parse_decision`` and ``StaticPolicyEngine`` give an undefined answer), an input document
  refused before evaluation (nested deeper than 64; an integer beyond +-2**53, or beyond int64
  for ``*_ns`` keys such as ``context.now_ns``; NaN/Infinity; non-string keys; lone surrogates;
  non-JSON values), and whatever ``parse_decision`` refuses (malformed decisions) or the policy
  denies.

``timeout_s`` bounds the whole call, time queued for a worker included, so an overloaded engine
sheds load by denying (``POLICY_UNAVAILABLE``) instead of building up latency. A timed-out
evaluation cannot be interrupted: its thread finishes in the background, so a slow policy ties
up at most ``max_threads`` workers and later calls queue (and time out) behind them.

``load()`` starts a process with the ``spawn`` method, which re-imports the ``__main__`` module:
scripts that load an engine need the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import signal
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from regopy import Bundle, Interpreter, RegoError

from policies.decision import Decision, parse_decision
from policies.engine import ENTRYPOINT, EngineStatus
from policies.lint import lint_bundle, package_of
from policies.regotest import (
    describe_rego_error,
    is_test_module,
    new_interpreter,
    read_sources,
    run_sources,
    to_rego_json,
)

logger = logging.getLogger(__name__)

#: Deepest container nesting accepted in an input document (the top-level object is depth 1).
MAX_INPUT_DEPTH = 64
#: Integers beyond this magnitude lose precision in float64-based JSON consumers.
MAX_SAFE_INT = 2**53
#: Nanosecond timestamps (keys ending in ``_ns``, e.g. ``context.now_ns``) are int64 in Rego
#: (``time.now_ns``) and already exceed 2**53, so they get the int64 range instead.
MAX_NS_INT = 2**63 - 1
_UNAVAILABLE = "POLICY_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The outcome of one ``load()``; on failure the previous bundle (if any) stays active."""

    ok: bool
    revision: str
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Active:
    generation: int
    revision: str
    bundle: Bundle
    reads_args: bool


@dataclass(frozen=True, slots=True)
class _Sources:
    modules: dict[str, str]
    data_json: str | None
    manifest: dict[str, object] | None
    revision: str

    @property
    def serving(self) -> dict[str, str]:
        return {path: text for path, text in self.modules.items() if not is_test_module(path)}


class InputRejected(ValueError):
    """The input document is not something the engine will evaluate."""


def encode_input(input_doc: Mapping[str, object]) -> str:
    """The input as regopy JSON; ``InputRejected`` if too deep, imprecise or not plain JSON."""
    _check_value(input_doc, 1)
    try:
        return to_rego_json(_plain(input_doc))
    except (TypeError, ValueError) as exc:
        raise InputRejected(f"not encodable as JSON: {type(exc).__name__}") from exc


def _plain(value: object) -> object:
    """Mappings and sequences other than dict/list as dict/list, so ``json.dumps`` accepts them."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _check_value(value: object, depth: int, key: str = "") -> None:
    if isinstance(value, Mapping | list | tuple):
        if depth > MAX_INPUT_DEPTH:
            raise InputRejected(f"nested deeper than {MAX_INPUT_DEPTH}")
        if isinstance(value, Mapping):
            for name, item in value.items():
                if not isinstance(name, str):
                    raise InputRejected("object keys must be strings")
                _check_value(item, depth + 1, name)
        else:
            for item in value:
                _check_value(item, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool):
        limit = MAX_NS_INT if key.endswith("_ns") else MAX_SAFE_INT
        if not -limit <= value <= limit:
            raise InputRejected(f"integer {key or 'value'} out of range")
    elif not isinstance(value, str | float | bool) and value is not None:
        raise InputRejected(f"{type(value).__name__} is not a JSON value")


def _revision(modules: Mapping[str, str], data_json: str | None, manifest: Mapping[str, object] | None) -> str:
    """The manifest's revision plus a content hash, so an edit without a manifest bump still shows."""
    digest = hashlib.sha256()
    files = dict(modules)
    if data_json is not None:
        files["data.json"] = data_json
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    content = "sha256:" + digest.hexdigest()[:12]
    declared = manifest.get("revision") if manifest is not None else None
    return f"{declared}+{content}" if isinstance(declared, str) and declared else content


def _read(rego_dir: Path) -> _Sources:
    modules, data_json = read_sources(rego_dir)
    manifest: dict[str, object] | None = None
    manifest_path = rego_dir / ".manifest"
    if manifest_path.is_file():
        loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError(".manifest must hold a JSON object")
        manifest = loaded
    return _Sources(modules, data_json, manifest, _revision(modules, data_json, manifest))


def _static_errors(sources: _Sources) -> list[str]:
    """Everything checkable without evaluating Rego: files present, manifest, data, lint."""
    errors: list[str] = []
    if not sources.serving:
        errors.append("no policy modules (only tests or nothing) under the policy directory")
    manifest = sources.manifest or {}
    if "revision" in manifest and not (isinstance(manifest["revision"], str) and manifest["revision"]):
        errors.append(".manifest revision must be a non-empty string")
    if manifest.get("rego_version", 1) != 1:
        errors.append(".manifest rego_version must be 1 (Rego v1 only)")
    roots = manifest.get("roots")
    if roots is not None:
        if not isinstance(roots, list) or not all(isinstance(root, str) for root in roots):
            errors.append(".manifest roots must be a list of strings")
        else:
            prefixes = [root.strip("/").replace("/", ".") for root in roots]
            for path, text in sorted(sources.modules.items()):
                package = package_of(text)
                if package and not any(package == p or package.startswith(p + ".") for p in prefixes):
                    errors.append(f"{path}: package {package} is outside the manifest roots {roots}")
    if sources.data_json is not None:
        try:
            if not isinstance(json.loads(sources.data_json), dict):
                errors.append("data.json must hold a JSON object")
        except ValueError as exc:
            errors.append(f"data.json is not valid JSON: {exc}")
    errors.extend(str(issue) for issue in lint_bundle(sources.modules))
    return errors


def _build(serving: Mapping[str, str], data_json: str | None) -> Bundle:
    """Compile the serving bundle; ``RegoError``/``ValueError`` if it does not build."""
    rego = new_interpreter()
    if data_json is not None:
        rego.add_data_json(to_rego_json(json.loads(data_json)))
    for path in sorted(serving):
        rego.add_module(path, serving[path])
    bundle = rego.build(None, [ENTRYPOINT])
    if not bundle.ok():
        raise ValueError(f"bundle for {ENTRYPOINT} did not build")
    return bundle


def _check(modules: Mapping[str, str], serving: Mapping[str, str], data_json: str | None) -> list[str]:
    """The child-process check: build, smoke-evaluate, run the Rego tests."""
    errors: list[str] = []
    try:
        bundle = _build(serving, data_json)
    except (RegoError, ValueError) as exc:
        return [f"serving bundle does not build: {describe_rego_error(exc)}"]
    smoke = new_interpreter()
    smoke.set_input_term("{}")
    output = smoke.query_bundle_entrypoint(bundle, ENTRYPOINT)
    if not output.ok():
        errors.append(f"{ENTRYPOINT} fails to evaluate on an empty input")
    elif str(output) != "undefined" and output[0].expressions:
        if parse_decision(output[0].expressions[0]).allow:
            errors.append(f"{ENTRYPOINT} allows an empty input (fail-open policy)")
    for result in run_sources(modules, data_json):
        if result.status in ("FAIL", "ERROR"):
            errors.append(f"{result.path}: {result.full_name}: {result.status} {result.message}".rstrip())
    return errors


def _child_main(conn: Connection, modules: dict[str, str], serving: dict[str, str], data_json: str | None) -> None:
    """Entry point of the check process; sends a list of errors (empty when all is well)."""
    try:
        errors = _check(modules, serving, data_json)
    except Exception as exc:  # report, do not die silently: a silent exit reads as a crash
        errors = [f"policy check raised {type(exc).__name__}: {exc}"]
    conn.send(errors)
    conn.close()


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def check_in_child(
    modules: dict[str, str], serving: dict[str, str], data_json: str | None, timeout_s: float
) -> list[str]:
    """Run the build + tests check in a spawned process; errors, or ``[]`` when it passed."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_child_main,
        args=(sender, modules, serving, data_json),
        name="citygraph-policy-check",
        daemon=True,
    )
    try:
        process.start()
    except OSError as exc:  # no processes or memory left: refuse the revision, do not raise
        receiver.close()
        sender.close()
        return [f"policy check could not start: {exc}"]
    sender.close()  # so the parent sees EOF when the child dies
    errors: list[str] | None = None
    try:
        if not receiver.poll(timeout_s):
            process.kill()
            return [f"policy check timed out after {timeout_s:g}s"]
        try:
            received = receiver.recv()
        except Exception:  # EOF (the child died) or an unreadable message: both read as a crash
            received = None
        if isinstance(received, list) and all(isinstance(item, str) for item in received):
            errors = received
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
        receiver.close()
    if errors is None:
        return [f"policy check crashed ({_exit_reason(process.exitcode)})"]
    if process.exitcode != 0:  # a crash while exiting still means the engine is unstable
        return [*errors, f"policy check process ended badly ({_exit_reason(process.exitcode)})"]
    return errors


class EmbeddedEngine:
    """The regopy-backed ``PolicyEngine`` (see the module docstring for the full contract)."""

    def __init__(
        self,
        rego_dir: Path,
        *,
        timeout_s: float = 0.5,
        max_threads: int = 4,
        check_timeout_s: float = 120.0,
    ) -> None:
        self._rego_dir = Path(rego_dir)
        self._timeout_s = timeout_s
        self._check_timeout_s = check_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="citygraph-rego")
        self._local = threading.local()
        self._load_lock = threading.Lock()
        self._active: _Active | None = None
        self._generation = 0
        self._failed: tuple[str, str] | None = None
        self._closed = False
        self._status: tuple[_Active | None, tuple[str, str] | None, bool, EngineStatus] | None = None

    # --- loading -------------------------------------------------------------------------

    def load(self) -> LoadResult:
        """Lint, check in a child process, build and swap in the policies under ``rego_dir``."""
        with self._load_lock:
            try:
                sources = _read(self._rego_dir)
            except (OSError, ValueError) as exc:  # ValueError covers JSON and UTF-8 decoding
                return self._failure("unreadable", [f"cannot read policies: {type(exc).__name__}: {exc}"])
            errors = _static_errors(sources)
            if not errors:
                errors = check_in_child(sources.modules, sources.serving, sources.data_json, self._check_timeout_s)
            if errors:
                return self._failure(sources.revision, errors)
            try:
                bundle = _build(sources.serving, sources.data_json)
            except (RegoError, ValueError) as exc:
                return self._failure(sources.revision, [f"in-process build failed: {describe_rego_error(exc)}"])
            self._generation += 1
            # One reference assignment: callers see either the old or the new bundle, never a mix.
            # Only the decision's packages count: the decision-log mask (system.log) reads the
            # logged event, not the decision's input.
            reads_args = any(
                "args" in text for text in sources.serving.values() if (package_of(text) or "").startswith("citygraph")
            )
            self._active = _Active(self._generation, sources.revision, bundle, reads_args)
            self._failed = None
            logger.info("policy bundle %s active (generation %d)", sources.revision, self._generation)
            return LoadResult(ok=True, revision=sources.revision)

    def _failure(self, revision: str, errors: list[str]) -> LoadResult:
        self._failed = (revision, "; ".join(errors))
        active = self._active.revision if self._active else "none"
        logger.warning("policy revision %s refused (keeping %s): %s", revision, active, self._failed[1])
        return LoadResult(ok=False, revision=revision, errors=errors)

    # --- deciding ------------------------------------------------------------------------

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        """Evaluate ``ENTRYPOINT`` for ``input_doc``; every failure is a deny, nothing raises."""
        active = self._active
        if self._closed:
            return Decision.deny("policy engine closed", code=_UNAVAILABLE)
        if active is None:
            return Decision.deny("no policy bundle loaded", code=_UNAVAILABLE)
        try:
            payload = encode_input(input_doc)
        except InputRejected as exc:
            return Decision.deny(f"input rejected: {exc}")
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, self._evaluate, active, payload)
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            return Decision.deny(f"policy evaluation timed out after {self._timeout_s:g}s", code=_UNAVAILABLE)
        except Exception as exc:  # RegoError, JSONDecodeError from regopy's Output, shutdown, ...
            return Decision.deny(f"policy engine error: {type(exc).__name__}", code=_UNAVAILABLE)

    def _interpreter(self, generation: int) -> Interpreter:
        if getattr(self._local, "generation", None) != generation:
            self._local.rego = new_interpreter()
            self._local.generation = generation
        rego: Interpreter = self._local.rego
        return rego

    def _evaluate(self, active: _Active, payload: str) -> Decision:
        """Runs in an executor thread, with that thread's own interpreter."""
        rego = self._interpreter(active.generation)
        try:
            rego.set_input_term(payload)
            output = rego.query_bundle_entrypoint(active.bundle, ENTRYPOINT)
        except BaseException:
            self._local.generation = None  # do not reuse an interpreter that just failed
            raise
        if not output.ok():
            return Decision.deny("policy evaluation error", code=_UNAVAILABLE)
        # Output has already json-decoded the engine's text: results[0].expressions is the list of
        # values (the same JSON as output.expressions(0).json()); undefined gives no expression.
        expressions = output[0].expressions if len(output) == 1 else []
        if len(expressions) != 1:
            return Decision.deny("policy result undefined")
        return parse_decision(expressions[0])

    # --- reporting -----------------------------------------------------------------------

    @property
    def revision(self) -> str:
        """The active revision, ``""`` before the first successful load."""
        active = self._active
        return active.revision if active else ""

    @property
    def reads_operation_args(self) -> bool:
        """Whether any active module may read ``input.operation.args`` (it mentions ``args`` at all)."""
        active = self._active
        return active.reads_args if active else True

    def status(self) -> EngineStatus:
        # Asked several times per request (the decision cache reads the revision twice per
        # decision, the audit record once): built again only when what it reports has changed.
        active, failed, closed, known = self._active, self._failed, self._closed, self._status
        if known is not None and known[0] is active and known[1] is failed and known[2] is closed:
            return known[3]
        status = self._describe(active, failed, closed)
        self._status = (active, failed, closed, status)
        return status

    def _describe(self, active: _Active | None, failed: tuple[str, str] | None, closed: bool) -> EngineStatus:
        parts = [f"generation {active.generation}" if active else "no bundle loaded"]
        if closed:
            parts.append("closed")
        if failed is not None:
            parts.append(f"last failed revision {failed[0]}: {failed[1]}")
        revision = active.revision if active else ""
        return EngineStatus(ready=active is not None and not closed, revision=revision, detail="; ".join(parts))

    async def aclose(self) -> None:
        """Stop accepting work; a running evaluation finishes in the background."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = [
    "MAX_INPUT_DEPTH",
    "MAX_NS_INT",
    "MAX_SAFE_INT",
    "EmbeddedEngine",
    "InputRejected",
    "LoadResult",
    "check_in_child",
    "encode_input",
]
