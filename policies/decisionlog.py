"""Decision logs in OPA's event format, masked by ``data.system.log.mask`` before anything is written.

``LoggingEngine`` wraps a ``PolicyEngine``: it times each evaluation, builds one event per decision
(``build_event``), applies the mask policy (``LogMask``) and hands the event to a sink
(``JsonlFileSink``, ``HttpSink``, ``TeeSink``). Logging never changes a decision and never raises
into the caller: failures are counted in ``citygraph_decision_log_failures_total{stage}`` and logged.

The event is OPA's decision-log event (docs ``management-decision-logs``)::

    {"decision_id": "<uuid4>", "timestamp": "2026-11-27T08:00:00.123456789Z",
     "path": "citygraph/authz/decision", "input": {...}, "result": {...},
     "bundles": {"citygraph": {"revision": "..."}},
     "labels": {"id": "<instance id>", "version": "<citygraph version>", "engine": "embedded"},
     "metrics": {"timer_rego_query_eval_ns": 81234}, "erased": [...], "masked": [...],
     "request_id": "<X-Request-Id>"}

Choices:

* ``result`` is the decision as the gateway enforces it (after ``parse_decision``): ``allow``,
  ``fields``, ``filter`` (allows only), ``obligations``, ``reasons``, ``code`` (denies only). A malformed
  policy answer therefore shows as the deny it became, with the reason.
* OPA's ``req_id`` is a per-server integer counter we do not have; it is omitted (OPA omits it
  too when unset). Our request id stays where policies see it, ``input.context.request_id``,
  and is copied into the extension field ``request_id`` so it survives a mask that erases input.
  ``trace_id``/``span_id``, ``requested_by`` and ``nd_builtin_cache`` are omitted.
* ``metrics.timer_rego_query_eval_ns`` is measured around the wrapped engine's ``decide``: it
  includes input encoding and time queued for a worker, not only Rego evaluation.
* ``erased`` and ``masked`` are always present (possibly empty) and list what was actually
  applied, as OPA does (a pointer that matched nothing is not listed).
* The wrapper belongs *below* ``CachingEngine``: every evaluation is logged, cache hits are not
  (OPA logs every query; a hit reuses a decision logged when it was evaluated, for an input that
  differs at most in ``context.request_id`` / ``now_ns``). The audit trail records every operation.

Masking follows OPA: the mask policy's ``input`` is the whole event (``input.input``,
``input.result``, ``input.path``, ``input.labels``, ...); ``mask`` is a set of JSON pointers to
erase (under ``/input`` or ``/result``) and/or ``{"op": "remove"|"upsert", "path", "value"}``.
Pointers are RFC 6901 (``~1`` is ``/``, ``~0`` is ``~``; OPA URL-escapes segments instead, which
only differs for keys with such characters). The policy is compiled from the ``system.log``
modules of the policy folder and ``data.json`` only, into its own bundle (entrypoint
``system/log/mask``), and evaluated in worker threads, one regopy interpreter per thread. Where OPA
drops an event whose mask fails, we write it with ``/input`` and ``/result`` erased (fail safe,
still evidence that a decision happened) and count a ``mask`` failure; the same happens while no
mask policy could be loaded at all. A folder without ``system.log`` modules masks nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import importlib.metadata
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import httpx
import orjson
import structlog
from prometheus_client import Counter
from regopy import Bundle, Interpreter, RegoError

from policies.decision import Decision, FieldRule
from policies.embedded import LoadResult, encode_input
from policies.engine import ENTRYPOINT, EngineStatus, PolicyEngine
from policies.lint import lint_bundle, package_of
from policies.regotest import describe_rego_error, is_test_module, new_interpreter, read_sources, to_rego_json

log = structlog.get_logger(__name__)

#: The mask rule, as a bundle entrypoint (``data.system.log.mask``).
MASK_ENTRYPOINT = "system/log/mask"
#: Modules of this package (and its subpackages) form the mask bundle.
MASK_PACKAGE = "system.log"

FAILURES = Counter(
    "citygraph_decision_log_failures",
    "Decision-log problems by stage: event (not buildable), mask (written with input and result "
    "erased), write (the sink raised), upload (an HTTP batch failed after its retries; requeued)",
    ["stage"],
)
DROPPED = Counter(
    "citygraph_decision_log_dropped",
    "Decision-log events lost: queue_full (oldest dropped), refused (4xx from the receiver), closed",
    ["reason"],
)

Event = dict[str, object]
Stage = Literal["event", "mask", "write", "upload"]

_REPORT_EVERY_S = 10.0
_reported: dict[str, tuple[float, int]] = {}


def _report(stage: str, error: str, **details: object) -> None:
    """Log a failure, at most once per ``_REPORT_EVERY_S`` per stage (a dead disk must not flood logs)."""
    now = time.monotonic()
    last, suppressed = _reported.get(stage, (-_REPORT_EVERY_S, 0))
    if now - last < _REPORT_EVERY_S:
        _reported[stage] = (last, suppressed + 1)
        return
    _reported[stage] = (now, 0)
    log.warning("decision log failure", stage=stage, error=error, suppressed=suppressed, **details)


def _fail(stage: Stage, exc: BaseException | str, **details: object) -> None:
    FAILURES.labels(stage=stage).inc()
    _report(stage, exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}", **details)


# --- events ------------------------------------------------------------------------------------


def rfc3339_ns(epoch_ns: int) -> str:
    """``2026-11-27T08:00:00.123456789Z``: RFC 3339 in UTC with nanoseconds, as OPA writes it."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _jsonable(value: object) -> object:
    """A JSON copy of ``value`` (mappings/sequences as dict/list); ``TypeError`` if it is not JSON."""
    if isinstance(value, Mapping):
        copied: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("object keys must be strings")
            copied[key] = _jsonable(item)
        return copied
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _rule_document(rule: FieldRule) -> dict[str, object]:
    doc: dict[str, object] = {"action": rule.action}
    if rule.action == "mask":
        doc.update(keep_prefix=rule.keep_prefix, keep_suffix=rule.keep_suffix)
        if rule.replace is not None:
            doc["replace"] = rule.replace
    elif rule.action == "deny":
        doc["code"] = rule.code
    return doc


def decision_result(decision: Decision) -> dict[str, object]:
    """The decision as a JSON document (the event's ``result``); ``filter`` on allows, ``code`` on denies."""
    result: dict[str, object] = {
        "allow": decision.allow,
        "fields": {coordinate: _rule_document(rule) for coordinate, rule in decision.fields.items()},
        "obligations": _jsonable(decision.obligations),
        "reasons": list(decision.reasons),
    }
    if decision.filter is not None:
        result["filter"] = _jsonable(decision.filter)
    if not decision.allow:
        result["code"] = decision.code
    return result


def build_event(
    input_doc: Mapping[str, object],
    decision: Decision,
    *,
    revision: str,
    labels: Mapping[str, str],
    eval_ns: int,
    timestamp_ns: int,
    path: str = ENTRYPOINT,
    bundle: str = "citygraph",
) -> Event:
    """One unmasked decision event (see the module docstring); an input that is not JSON is erased."""
    erased: list[str] = []
    event: Event = {
        "decision_id": str(uuid.uuid4()),
        "timestamp": rfc3339_ns(timestamp_ns),
        "path": path,
        "labels": dict(labels),
        "bundles": {bundle: {"revision": revision}},
    }
    try:
        copied = _jsonable(input_doc)
        orjson.dumps(copied)  # integers beyond 64 bits and the like: refuse here, not in the sink
        event["input"] = copied
    except (TypeError, orjson.JSONEncodeError):
        erased.append("/input")  # the engine refused it too (deny); it cannot be logged as it was
    event["result"] = decision_result(decision)
    event["metrics"] = {"timer_rego_query_eval_ns": eval_ns}
    event["erased"] = erased
    event["masked"] = []
    context = input_doc.get("context")
    request_id = context.get("request_id") if isinstance(context, Mapping) else None
    if isinstance(request_id, str):
        event["request_id"] = request_id
    return event


def erase_all(event: Event) -> None:
    """The fail-safe mask: drop ``input`` and ``result`` entirely and say so in ``erased``."""
    erased = [p for p in _pointers(event.get("erased")) if not p.startswith(("/input", "/result"))]
    event.pop("input", None)
    event.pop("result", None)
    event["erased"] = [*erased, "/input", "/result"]
    event["masked"] = []


def _pointers(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


# --- mask rules (OPA semantics, plugins/logs/mask.go) ------------------------------------------


class MaskError(ValueError):
    """The mask policy's answer is not a valid rule set; the whole set is refused, as in OPA."""


@dataclass(frozen=True, slots=True)
class MaskRule:
    """One parsed rule: ``remove`` (erase) or ``upsert`` ``value`` at the pointer ``path``."""

    op: Literal["remove", "upsert"]
    path: str
    parts: tuple[str, ...]
    value: object = None


def parse_mask_rules(raw: object) -> list[MaskRule]:
    """Parse the value of ``data.system.log.mask`` (a set, i.e. a JSON array); ``MaskError`` if invalid."""
    if not isinstance(raw, list):
        raise MaskError(f"mask must be a set, got {type(raw).__name__}")
    rules: list[MaskRule] = []
    for item in raw:
        if isinstance(item, str):
            op: object = "remove"
            path: object = item
            value: object = None
        elif isinstance(item, dict):
            op, path, value = item.get("op", "remove"), item.get("path"), item.get("value")
        else:
            raise MaskError(f"mask rule must be a string or an object, got {type(item).__name__}")
        if op not in ("remove", "upsert"):
            raise MaskError(f"mask op is not supported: {op!r}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise MaskError(f"mask path must be a slash-prefixed string: {path!r}")
        parts = tuple(part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/"))
        if parts[0] not in ("input", "result", "nd_builtin_cache"):
            raise MaskError(f"mask prefix not allowed: {parts[0]!r}")
        rules.append(MaskRule("remove" if op == "remove" else "upsert", path, parts, value))
    return rules


def _index(container: list[object], key: str) -> int | None:
    if not key.isdigit():
        return None
    index = int(key)
    return index if index < len(container) else None


def _remove(node: object, parts: tuple[str, ...]) -> bool:
    for key in parts[:-1]:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and (index := _index(node, key)) is not None:
            node = node[index]
        else:
            return False
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    if isinstance(node, list) and (index := _index(node, last)) is not None:
        del node[index]
        return True
    return False


def _upsert(node: object, parts: tuple[str, ...], value: object) -> bool:
    for key in parts[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})  # missing objects are created, as OPA's mkdirp does
        elif isinstance(node, list) and (index := _index(node, key)) is not None:
            node = node[index]
        else:
            return False
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
        return True
    if isinstance(node, list) and (index := _index(node, last)) is not None:
        node[index] = value
        return True
    return False


def _slot(event: Event, key: str) -> list[object]:
    value = event.get(key)
    if not isinstance(value, list):
        value = event[key] = []
    return value


def apply_mask(event: Event, rules: list[MaskRule]) -> None:
    """Apply ``rules`` in order to ``event`` in place; record applied pointers in ``erased``/``masked``."""
    erased, masked = _slot(event, "erased"), _slot(event, "masked")
    for rule in rules:
        root = rule.parts[0]
        if root not in event:
            continue  # e.g. /input after the input was erased: nothing to do, nothing recorded
        if len(rule.parts) == 1:
            if rule.op == "remove":
                del event[root]
            else:
                event[root] = rule.value
            applied = True
        elif rule.op == "remove":
            applied = _remove(event[root], rule.parts[1:])
        else:
            applied = isinstance(event[root], dict) and _upsert(event[root], rule.parts[1:], rule.value)
        if applied:
            (erased if rule.op == "remove" else masked).append(rule.path)


# --- the mask policy -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _MaskBundle:
    generation: int
    revision: str
    bundle: Bundle | None  # None: the folder has no system.log module, nothing to mask


def _mask_sources(rego_dir: Path) -> tuple[dict[str, str], str | None, str]:
    """The ``system.log`` serving modules, ``data.json`` and a content revision."""
    modules, data_json = read_sources(rego_dir)
    selected = {}
    for path, text in modules.items():
        package = package_of(text) or ""
        if not is_test_module(path) and (package == MASK_PACKAGE or package.startswith(MASK_PACKAGE + ".")):
            selected[path] = text
    digest = hashlib.sha256()
    for path in sorted(selected):
        digest.update(path.encode() + b"\0" + selected[path].encode() + b"\0")
    digest.update((data_json or "").encode())
    return selected, data_json, "sha256:" + digest.hexdigest()[:12]


class LogMask:
    """Evaluates ``data.system.log.mask`` over decision events, in its own worker threads.

    ``load()`` is synchronous (call it via a thread): it reads the ``system.log`` modules under
    ``rego_dir`` and ``data.json``, lints them and builds the mask bundle in process. It does not
    run them in a child process first: load it after ``EmbeddedEngine.load()`` succeeded on the
    same folder, whose child-process check compiled these modules and ran their tests. A failed
    load keeps the previous mask; before any successful load every event is fully erased.
    """

    def __init__(self, rego_dir: Path, *, timeout_s: float = 0.5, max_threads: int = 1) -> None:
        self._rego_dir = Path(rego_dir)
        self._timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="citygraph-logmask")
        self._local = threading.local()
        self._load_lock = threading.Lock()
        self._active: _MaskBundle | None = None
        self._generation = 0
        self._closed = False

    @property
    def revision(self) -> str:
        """The active mask revision (a content hash), ``""`` before the first successful load."""
        active = self._active
        return active.revision if active else ""

    def load(self) -> LoadResult:
        """Read, lint and build the mask bundle, then swap it in; see the class docstring."""
        with self._load_lock:
            try:
                modules, data_json, revision = _mask_sources(self._rego_dir)
            except (OSError, ValueError) as exc:
                return self._failure("unreadable", [f"cannot read policies: {type(exc).__name__}: {exc}"])
            errors = [str(issue) for issue in lint_bundle(modules)]
            if errors:
                return self._failure(revision, errors)
            bundle: Bundle | None = None
            if modules:
                try:
                    rego = new_interpreter()
                    if data_json is not None:
                        rego.add_data_json(to_rego_json(orjson.loads(data_json)))
                    for path in sorted(modules):
                        rego.add_module(path, modules[path])
                    bundle = rego.build(None, [MASK_ENTRYPOINT])
                except (RegoError, ValueError) as exc:
                    return self._failure(revision, [f"mask bundle does not build: {describe_rego_error(exc)}"])
                if not bundle.ok():
                    return self._failure(revision, [f"bundle for {MASK_ENTRYPOINT} did not build"])
            self._generation += 1
            self._active = _MaskBundle(self._generation, revision, bundle)
            log.info("decision log mask active", revision=revision, modules=sorted(modules))
            return LoadResult(ok=True, revision=revision)

    def _failure(self, revision: str, errors: list[str]) -> LoadResult:
        log.error("decision log mask refused", revision=revision, kept=self.revision or "none", errors=errors)
        return LoadResult(ok=False, revision=revision, errors=errors)

    async def apply(self, event: Event) -> bool:
        """Mask ``event`` in place; ``False`` if the mask failed, and then ``erase_all`` was applied."""
        active = self._active
        try:
            if self._closed or active is None:
                raise MaskError("no mask policy loaded" if not self._closed else "mask closed")
            if active.bundle is None:
                return True
            payload = encode_input(event)
            future = asyncio.get_running_loop().run_in_executor(self._executor, self._evaluate, active, payload)
            rules = parse_mask_rules(await asyncio.wait_for(future, self._timeout_s))
            apply_mask(event, rules)
            return True
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller is being cancelled: let it
            self._failed(event, exc)  # the executor was shut down under us
            return False
        except Exception as exc:  # MaskError, InputRejected, TimeoutError, RegoError, JSON errors, ...
            self._failed(event, exc)
            return False

    @staticmethod
    def _failed(event: Event, exc: BaseException) -> None:
        erase_all(event)  # never write what was not masked
        _fail("mask", exc, decision_id=event.get("decision_id"))

    def _interpreter(self, generation: int) -> Interpreter:
        if getattr(self._local, "generation", None) != generation:
            self._local.rego = new_interpreter()  # one per thread: a shared interpreter segfaults
            self._local.generation = generation
        rego: Interpreter = self._local.rego
        return rego

    def _evaluate(self, active: _MaskBundle, payload: str) -> object:
        """Runs in a worker thread: the raw value of the mask rule, ``[]`` when it is undefined."""
        rego = self._interpreter(active.generation)
        try:
            rego.set_input_term(payload)
            output = rego.query_bundle_entrypoint(active.bundle, MASK_ENTRYPOINT)
        except BaseException:
            self._local.generation = None  # do not reuse an interpreter that just failed
            raise
        if not output.ok():
            raise MaskError("mask policy evaluation error")
        expressions = output[0].expressions if len(output) == 1 else []
        return expressions[0] if len(expressions) == 1 else []

    async def aclose(self) -> None:
        """Stop evaluating; later events are fully erased."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)


# --- sinks ---------------------------------------------------------------------------------------


class DecisionSink(Protocol):
    """Where masked events go. ``write`` must not block for long and may raise (it is counted)."""

    def write(self, event: Event) -> None:
        """Accept one event (already masked)."""
        ...

    async def flush(self) -> None:
        """Push out whatever is buffered."""
        ...

    async def aclose(self) -> None:
        """Flush and release files, tasks and clients."""
        ...


def _line(event: Event) -> bytes:
    return orjson.dumps(event) + b"\n"  # UTF-8, no escapes for CJK; one event per line


class JsonlFileSink:
    """Appends one JSON event per line (UTF-8) to ``path``, rotating like ``RotatingFileHandler``.

    Before a write that would take the file past ``max_bytes`` (bytes, not characters) it becomes
    ``path.1``, older backups shift up to ``path.<backups>`` and the oldest is deleted;
    ``backups=0`` truncates. A line longer than ``max_bytes`` still goes, alone, into a fresh file.
    Each line is flushed to the OS as it is written (no fsync). The file is created ``0o640``.
    Errors (disk full, permissions) raise from ``write``; the next write reopens the file.
    """

    def __init__(self, path: Path, *, max_bytes: int = 100_000_000, backups: int = 5) -> None:
        if max_bytes <= 0 or backups < 0:
            raise ValueError("max_bytes must be > 0 and backups >= 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _rotate(self) -> None:
        self._close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def write(self, event: Event) -> None:
        """Append ``event`` as one line, rotating first if it would not fit."""
        line = _line(event)
        with self._lock:
            try:
                self._open()
                if self._size > 0 and self._size + len(line) > self.max_bytes:
                    self._rotate()
                fd = self._open()
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
                self._size += written
            except BaseException:
                self._close()  # reopen (and re-measure) next time
                raise

    async def flush(self) -> None:
        """Nothing is buffered in process: every ``write`` reached the OS."""
        return None

    async def aclose(self) -> None:
        with self._lock:
            self._close()


class HttpSink:
    """Ships events to an OPA-compatible ``/logs`` endpoint: gzip JSON arrays, ``POST``, in batches.

    ``write`` only enqueues (never blocks, never raises). A background task, started with the
    first ``write`` inside an event loop, sends full batches as soon as ``batch_size`` events are
    queued, and everything queued every ``flush_interval_s``. A batch is retried ``retries`` times with
    exponential backoff (``backoff_s`` doubling, capped at ``max_backoff_s``) on connection errors,
    timeouts, 5xx, 408 and 429; if it still fails it is put back at the head of the queue and the
    next round tries again. Any other 4xx drops the batch (``refused``): the receiver will not take
    it however often it is sent. The queue holds at most ``max_queue`` events; beyond that the
    oldest are dropped and counted (``dropped`` and ``citygraph_decision_log_dropped_total``).
    ``aclose()`` tries a last flush for at most ``close_timeout_s``, then drops what is left.
    """

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 100,
        flush_interval_s: float = 5.0,
        headers: Mapping[str, str] | None = None,
        max_queue: int = 10_000,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        close_timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be >= 1")
        self.url = url
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.close_timeout_s = close_timeout_s
        self._headers = {
            **(headers or {}),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": "citygraph-decision-log",
        }
        self._timeout_s = timeout_s
        self._transport = transport
        self._queue: deque[Event] = deque()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._send_lock: asyncio.Lock | None = None
        self._closed = False
        #: Events handed to the receiver (2xx), events lost, and upload rounds that failed.
        self.sent = 0
        self.dropped = 0
        self.failed_uploads = 0

    @property
    def queued(self) -> int:
        """Events waiting to be sent."""
        return len(self._queue)

    def _drop(self, count: int, reason: str) -> None:
        if count:
            self.dropped += count
            DROPPED.labels(reason=reason).inc(count)
            _report(f"dropped:{reason}", f"{count} decision events dropped", reason=reason, url=self.url)

    def write(self, event: Event) -> None:
        """Enqueue ``event``; when the queue is full the oldest event is dropped."""
        if self._closed:
            self._drop(1, "closed")
            return
        self._queue.append(event)
        overflow = len(self._queue) - self.max_queue
        for _ in range(overflow):
            self._queue.popleft()
        self._drop(max(overflow, 0), "queue_full")
        self._start()
        if len(self._queue) >= self.batch_size and self._wake is not None:
            self._wake.set()

    def _start(self) -> None:
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (synchronous caller): events wait for flush()
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run(self._wake), name="citygraph-decision-log-upload")

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.flush_interval_s)
            full_only = wake.is_set()  # woken by a full batch: the remainder waits for the interval
            wake.clear()
            try:
                await self._drain(full_only=full_only)
            except Exception as exc:  # a bug here must not end uploading for the process
                _fail("upload", exc, url=self.url)

    async def flush(self) -> None:
        """Send everything queued now, in batches; a batch that still fails stays queued."""
        await self._drain()

    async def _drain(self, *, full_only: bool = False) -> None:
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            while len(self._queue) >= (self.batch_size if full_only else 1):
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                try:
                    outcome = await self._post(batch)
                except BaseException:  # cancelled (aclose's deadline) or a bug: keep the events
                    self._requeue(batch)
                    raise
                if outcome == "sent":
                    self.sent += len(batch)
                elif outcome == "refused":
                    self._drop(len(batch), "refused")
                else:
                    self.failed_uploads += 1
                    _fail("upload", f"batch of {len(batch)} not accepted after {self.retries} retries", url=self.url)
                    self._requeue(batch)
                    return

    def _requeue(self, batch: list[Event]) -> None:
        """Put ``batch`` back at the head (oldest first); if that overflows, the oldest go."""
        self._queue.extendleft(reversed(batch))
        overflow = len(self._queue) - self.max_queue
        for _ in range(overflow):
            self._queue.popleft()
        self._drop(max(overflow, 0), "queue_full")

    async def _post(self, batch: list[Event]) -> Literal["sent", "refused", "failed"]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport)
        body = gzip.compress(orjson.dumps(batch), compresslevel=6)
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))
            try:
                response = await self._client.post(self.url, content=body, headers=self._headers)
            except httpx.HTTPError as exc:
                _report("upload-attempt", f"{type(exc).__name__}: {exc}", url=self.url, attempt=attempt)
                continue
            if response.is_success:
                return "sent"
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                _report("upload-refused", f"HTTP {response.status_code}", url=self.url)
                return "refused"
            _report("upload-attempt", f"HTTP {response.status_code}", url=self.url, attempt=attempt)
        return "failed"

    async def aclose(self) -> None:
        """Stop the background task, flush for at most ``close_timeout_s``, drop the rest."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self._drain(), self.close_timeout_s)
        except TimeoutError:
            pass
        self._drop(len(self._queue), "closed")
        self._queue.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class TeeSink:
    """Writes every event to each sink; one failing sink does not keep the event from the others."""

    def __init__(self, *sinks: DecisionSink) -> None:
        self.sinks = sinks

    def write(self, event: Event) -> None:
        """Write to every sink, then raise the first error (if any) so it is counted."""
        first: Exception | None = None
        for sink in self.sinks:
            try:
                sink.write(event)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    async def flush(self) -> None:
        for sink in self.sinks:
            await sink.flush()

    async def aclose(self) -> None:
        for sink in self.sinks:
            await sink.aclose()


# --- the engine wrapper --------------------------------------------------------------------------


def instance_labels(instance_id: str | None = None) -> dict[str, str]:
    """OPA-style ``labels`` base: ``id`` (given, else a uuid4 per process) and citygraph's ``version``."""
    try:
        version = importlib.metadata.version("citygraph")
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"
    return {"id": instance_id or str(uuid.uuid4()), "version": version}


class LoggingEngine:
    """A ``PolicyEngine`` that logs every decision of ``engine`` (see the module docstring).

    Put it directly around the raw engine, below ``CachingEngine``. ``mask`` is required so that
    "no masking" is a visible choice (``None``). When the wrapped engine's revision changes (a
    policy reload), the mask is reloaded in a worker thread; until that finishes the previous
    mask applies.
    """

    def __init__(
        self,
        engine: PolicyEngine,
        sink: DecisionSink,
        *,
        labels: Mapping[str, str],
        engine_name: Literal["embedded", "opa"],
        mask: LogMask | None,
        bundle: str = "citygraph",
    ) -> None:
        self.engine = engine
        self.sink = sink
        self.mask = mask
        self.labels = {**labels, "engine": engine_name}
        self.bundle = bundle
        self._mask_revision = engine.status().revision
        self._reload: asyncio.Task[LoadResult] | None = None

    @property
    def reads_operation_args(self) -> bool:
        """Forwarded for ``CachingEngine``: whether the policies may read ``operation.args``."""
        return getattr(self.engine, "reads_operation_args", True) is not False

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        """The wrapped engine's decision, unchanged; logged on the way out."""
        timestamp_ns = time.time_ns()
        started = time.perf_counter_ns()
        decision = await self.engine.decide(input_doc)
        eval_ns = time.perf_counter_ns() - started
        try:
            await self._log(input_doc, decision, eval_ns, timestamp_ns)
        except Exception as exc:  # a logging bug must never change or fail the decision
            _fail("event", exc)
        return decision

    async def _log(self, input_doc: Mapping[str, object], decision: Decision, eval_ns: int, timestamp_ns: int) -> None:
        revision = self.engine.status().revision
        event = build_event(
            input_doc,
            decision,
            revision=revision,
            labels=self.labels,
            eval_ns=eval_ns,
            timestamp_ns=timestamp_ns,
            bundle=self.bundle,
        )
        if self.mask is not None:
            self._follow_revision(revision)
            await self.mask.apply(event)  # failures are counted inside and erase the event
        try:
            self.sink.write(event)
        except Exception as exc:
            _fail("write", exc, decision_id=event["decision_id"])

    def _follow_revision(self, revision: str) -> None:
        if self.mask is None or not revision or revision == self._mask_revision:
            return
        if self._reload is not None and not self._reload.done():
            return  # one reload at a time; the next decision after it finishes checks again
        self._mask_revision = revision
        self._reload = asyncio.get_running_loop().create_task(asyncio.to_thread(self.mask.load))

    def status(self) -> EngineStatus:
        return self.engine.status()

    async def aclose(self) -> None:
        """Close the engine, then flush and close the sink, then the mask."""
        await self.engine.aclose()
        if self._reload is not None:
            with contextlib.suppress(Exception):
                await self._reload
        try:
            await self.sink.aclose()
        except Exception as exc:
            _fail("write", exc)
        if self.mask is not None:
            await self.mask.aclose()


__all__ = [
    "DROPPED",
    "FAILURES",
    "MASK_ENTRYPOINT",
    "MASK_PACKAGE",
    "DecisionSink",
    "Event",
    "HttpSink",
    "JsonlFileSink",
    "LogMask",
    "LoggingEngine",
    "MaskError",
    "MaskRule",
    "TeeSink",
    "apply_mask",
    "build_event",
    "decision_result",
    "erase_all",
    "instance_labels",
    "parse_mask_rules",
    "rfc3339_ns",
]
