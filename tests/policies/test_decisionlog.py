"""Decision logs: OPA's event format, the mask applied before writing, rotation, HTTP shipping, fail-safe."""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import re
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from policies.cache import CachingEngine
from policies.decision import Decision
from policies.decisionlog import (
    Event,
    HttpSink,
    JsonlFileSink,
    LoggingEngine,
    LogMask,
    MaskError,
    TeeSink,
    apply_mask,
    instance_labels,
    parse_mask_rules,
    rfc3339_ns,
)
from policies.embedded import EmbeddedEngine
from policies.engine import ENTRYPOINT, StaticPolicyEngine

REGO_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
ID_NUMBER = "330203199001011234"

INPUT: dict[str, object] = {
    "subject": {"id": "alice", "department": "market_supervision", "roles": ["staff"], "districts": ["330203"]},
    "action": "read",
    "purpose": "law_enforcement",
    "case_ref": "甬市监案〔2026〕17号",
    "resource": {"connector": "credit", "type": "CreditRecord", "classification": 3, "fields": []},
    "operation": {
        "type": "query",
        "name": "Person",
        "coordinates": ["Query.person"],
        "args": {"Query.person": {"idNumber": ID_NUMBER}},
        "depth": 2,
    },
    "context": {"now_ns": 1795000000000000000, "today": "2026-11-27", "request_id": "req-1"},
}
ALLOW = {
    "allow": True,
    "fields": {"Person.idNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}},
    "filter": {"type": "field", "field": "t.district_code", "operator": "in", "value": ["330203"]},
    "obligations": {"audit": "full", "max_rows": 500},
    "reasons": ["district officer"],
}

# A mask policy for these tests (the city's own is policies/rego/system_log.rego). It reads the
# whole event, as OPA's does: input.input, input.result, input.labels.
TEST_MASK = """package system.log

mask contains "/input/operation/args" if {
\t_ = input.input.operation.args
}

mask contains upsert if {
\tinput.labels.engine == "embedded"
\tupsert := {"op": "upsert", "path": "/input/subject/districts", "value": count(input.input.subject.districts)}
}

mask contains "/result/reasons" if input.result.allow == false
"""


class MemorySink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def write(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class RaisingSink(MemorySink):
    def write(self, event: Event) -> None:
        raise OSError("disk full")


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(100_000):
        if condition() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.01)


def failures(stage: str) -> float:
    return REGISTRY.get_sample_value("citygraph_decision_log_failures_total", {"stage": stage}) or 0.0


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("citygraph_decision_log_dropped_total", {"reason": reason}) or 0.0


def mask_dir(tmp_path: Path, source: str = TEST_MASK) -> Path:
    folder = tmp_path / "rego"
    folder.mkdir(exist_ok=True)
    (folder / "system_log.rego").write_text(source, encoding="utf-8")
    (folder / "authz.rego").write_text("package citygraph.authz\n\ndefault decision := {}\n", encoding="utf-8")
    return folder


def loaded_mask(folder: Path) -> LogMask:
    mask = LogMask(folder)
    result = mask.load()
    assert result.ok, result.errors
    return mask


def logging_engine(
    answer: object = ALLOW, *, sink: MemorySink | None = None, mask: LogMask | None = None
) -> tuple[LoggingEngine, MemorySink]:
    sink = sink or MemorySink()
    engine = LoggingEngine(
        StaticPolicyEngine(lambda _doc: answer, revision="2026.11.27-1"),
        sink,
        labels=instance_labels("gw-test"),
        engine_name="embedded",
        mask=mask,
    )
    return engine, sink


# --- the event ---------------------------------------------------------------------------------


async def test_events_have_opas_fields_and_types() -> None:
    engine, sink = logging_engine()
    decision = await engine.decide(INPUT)
    assert decision.allow
    (event,) = sink.events
    assert set(event) == {
        "decision_id",
        "timestamp",
        "path",
        "labels",
        "bundles",
        "input",
        "result",
        "metrics",
        "erased",
        "masked",
        "request_id",
    }
    assert uuid.UUID(str(event["decision_id"])).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", str(event["timestamp"]))
    assert event["path"] == ENTRYPOINT == "citygraph/authz/decision"
    assert event["bundles"] == {"citygraph": {"revision": "2026.11.27-1"}}
    labels = event["labels"]
    assert isinstance(labels, dict) and labels["id"] == "gw-test" and labels["engine"] == "embedded"
    assert isinstance(labels["version"], str) and labels["version"]
    metrics = event["metrics"]
    assert isinstance(metrics, dict) and set(metrics) == {"timer_rego_query_eval_ns"}
    assert isinstance(metrics["timer_rego_query_eval_ns"], int) and metrics["timer_rego_query_eval_ns"] > 0
    assert event["input"] == INPUT and event["input"] is not INPUT
    assert event["result"] == {
        "allow": True,
        "fields": {"Person.idNumber": {"action": "mask", "keep_prefix": 3, "keep_suffix": 4}},
        "filter": ALLOW["filter"],
        "obligations": {"audit": "full", "max_rows": 500},
        "reasons": ["district officer"],
    }
    assert event["erased"] == [] and event["masked"] == []
    assert event["request_id"] == "req-1"  # our extension; OPA's numeric req_id is not emitted
    json.dumps(event)  # plain JSON throughout


async def test_deny_result_carries_code_and_no_filter() -> None:
    engine, sink = logging_engine({"allow": False, "reasons": ["no"], "code": "PURPOSE_REQUIRED"})
    assert (await engine.decide(INPUT)).code == "PURPOSE_REQUIRED"
    assert sink.events[0]["result"] == {
        "allow": False,
        "fields": {},
        "obligations": {},
        "reasons": ["no"],
        "code": "PURPOSE_REQUIRED",
    }


def test_rfc3339_ns() -> None:
    assert rfc3339_ns(1_795_000_000_000_000_123) == "2026-11-18T11:06:40.000000123Z"
    assert rfc3339_ns(0) == "1970-01-01T00:00:00.000000000Z"


async def test_input_that_is_not_json_is_erased_not_logged() -> None:
    engine, sink = logging_engine()
    await engine.decide({**INPUT, "operation": {"args": {1: "x"}}})
    event = sink.events[0]
    assert "input" not in event and event["erased"] == ["/input"] and event["result"]


# --- masking -----------------------------------------------------------------------------------


async def test_mask_is_applied_before_writing(tmp_path: Path) -> None:
    mask = loaded_mask(mask_dir(tmp_path))
    file_sink = JsonlFileSink(tmp_path / "log" / "decisions.jsonl")
    memory = MemorySink()
    engine = LoggingEngine(
        StaticPolicyEngine(lambda _doc: ALLOW, revision="r1"),
        TeeSink(memory, file_sink),
        labels=instance_labels("gw-test"),
        engine_name="embedded",
        mask=mask,
    )
    before = copy.deepcopy(INPUT)
    await engine.decide(INPUT)
    await engine.aclose()
    assert INPUT == before  # masked in the logged copy only (input documents share parts between requests)
    event = memory.events[0]
    assert event["erased"] == ["/input/operation/args"]
    assert event["masked"] == ["/input/subject/districts"]
    logged_input = event["input"]
    assert isinstance(logged_input, dict)
    assert "args" not in logged_input["operation"] and logged_input["subject"]["districts"] == 1
    assert logged_input["case_ref"] == INPUT["case_ref"]  # audit evidence stays
    assert INPUT["operation"]["args"] == {"Query.person": {"idNumber": ID_NUMBER}}  # type: ignore[index]
    text = (tmp_path / "log" / "decisions.jsonl").read_text(encoding="utf-8")
    assert ID_NUMBER not in text and "甬市监案" in text  # raw UTF-8 on disk, nothing unmasked
    assert json.loads(text) == event


async def test_mask_sees_the_whole_event(tmp_path: Path) -> None:
    mask = loaded_mask(mask_dir(tmp_path))
    engine, sink = logging_engine({"allow": False, "reasons": ["secret reason"]}, mask=mask)
    await engine.decide(INPUT)
    result = sink.events[0]["result"]
    assert isinstance(result, dict) and "reasons" not in result
    assert "/result/reasons" in sink.events[0]["erased"]  # type: ignore[operator]
    opa = LoggingEngine(StaticPolicyEngine(lambda _doc: ALLOW), sink, labels={"id": "x"}, engine_name="opa", mask=mask)
    await opa.decide(INPUT)
    assert sink.events[1]["masked"] == []  # the districts rule asks for input.labels.engine == "embedded"


def test_mask_rules_follow_opa() -> None:
    event: Event = {
        "input": {"a": {"b": 1, "c/d": 2}, "list": [1, 2, 3]},
        "result": {"allow": True},
        "erased": [],
        "masked": [],
    }
    rules = parse_mask_rules(
        [
            "/input/a/b",
            "/input/a/c~1d",
            "/input/missing/x",  # nothing there: not applied, not listed
            "/input/list/1",
            {"op": "upsert", "path": "/input/new/deep", "value": "***"},
            {"op": "upsert", "path": "/result", "value": {"allow": True}},
            {"op": "remove", "path": "/nd_builtin_cache"},  # the event has none: nothing to do
        ]
    )
    apply_mask(event, rules)
    assert event["input"] == {"a": {}, "list": [1, 3], "new": {"deep": "***"}}
    assert event["erased"] == ["/input/a/b", "/input/a/c~1d", "/input/list/1"]
    assert event["masked"] == ["/input/new/deep", "/result"]
    apply_mask(event, parse_mask_rules(["/input"]))
    assert "input" not in event and event["erased"][-1] == "/input"
    for bad in ([1], ["input/x"], ["/labels/id"], [{"op": "replace", "path": "/input/x"}], "/input"):
        with pytest.raises(MaskError):
            parse_mask_rules(bad)


async def test_mask_failure_erases_input_and_result(tmp_path: Path) -> None:
    # A mask rule outside /input and /result is an invalid rule set (OPA refuses the whole set).
    mask = loaded_mask(mask_dir(tmp_path, 'package system.log\n\nmask contains "/labels/id" if true\n'))
    engine, sink = logging_engine(mask=mask)
    before = failures("mask")
    assert (await engine.decide(INPUT)).allow
    event = sink.events[0]
    assert "input" not in event and "result" not in event
    assert event["erased"] == ["/input", "/result"] and event["request_id"] == "req-1"
    assert failures("mask") == before + 1


async def test_mask_evaluation_error_erases(tmp_path: Path) -> None:
    # concat() of an object is a strict builtin error: Output.ok() is False.
    source = 'package system.log\n\nmask contains x if {\n\tx := concat(",", input.input.operation.args)\n}\n'
    engine, sink = logging_engine(mask=loaded_mask(mask_dir(tmp_path, source)))
    assert (await engine.decide(INPUT)).allow
    assert sink.events[0]["erased"] == ["/input", "/result"]


async def test_no_mask_loaded_erases_and_no_mask_module_masks_nothing(tmp_path: Path) -> None:
    engine, sink = logging_engine(mask=LogMask(mask_dir(tmp_path)))  # never loaded
    await engine.decide(INPUT)
    assert sink.events[0]["erased"] == ["/input", "/result"]
    folder = mask_dir(tmp_path)
    (folder / "system_log.rego").unlink()
    engine, sink = logging_engine(mask=loaded_mask(folder))
    await engine.decide(INPUT)
    assert sink.events[0]["input"] == INPUT and sink.events[0]["erased"] == []


def test_mask_that_fails_lint_is_refused(tmp_path: Path) -> None:
    mask = LogMask(mask_dir(tmp_path, 'package system.log\n\nmask["/input/x"] { true }\n'))
    result = mask.load()
    assert not result.ok and mask.revision == ""


async def test_mask_reloads_when_the_engine_revision_changes(tmp_path: Path) -> None:
    folder = mask_dir(tmp_path)
    mask = loaded_mask(folder)
    static = StaticPolicyEngine(lambda _doc: ALLOW, revision="r1")
    sink = MemorySink()
    engine = LoggingEngine(static, sink, labels={"id": "x"}, engine_name="embedded", mask=mask)
    first = mask.revision
    (folder / "system_log.rego").write_text('package system.log\n\nmask contains "/input/subject" if true\n')
    await engine.decide(INPUT)
    assert mask.revision == first  # same engine revision: no reload
    static._revision = "r2"
    await engine.decide(INPUT)
    await eventually(lambda: mask.revision != first)
    await engine.decide(INPUT)
    assert sink.events[-1]["erased"] == ["/input/subject"]
    await engine.aclose()


@pytest.mark.skipif(
    not (REGO_DIR / "system_log.rego").exists(), reason="policies/rego/system_log.rego is not installed yet"
)
async def test_the_city_mask_erases_arguments_and_keeps_their_names() -> None:
    engine, sink = logging_engine(mask=loaded_mask(REGO_DIR))
    await engine.decide(INPUT)
    event = sink.events[0]
    assert event["erased"] == ["/input/operation/args"]
    assert event["masked"] == ["/input/operation/arg_names"]
    assert event["input"]["operation"]["arg_names"] == {"Query.person": ["idNumber"]}  # type: ignore[index]
    assert ID_NUMBER not in json.dumps(event)


async def test_embedded_engine_decisions_are_logged(tmp_path: Path) -> None:
    embedded = EmbeddedEngine(REGO_DIR)
    assert (await asyncio.to_thread(embedded.load)).ok
    sink = MemorySink()
    engine = LoggingEngine(
        embedded, sink, labels=instance_labels(), engine_name="embedded", mask=loaded_mask(mask_dir(tmp_path))
    )
    subject = {**INPUT["subject"], "clearance": 3, "authenticated": True, "issuer": "citygraph-dev"}  # type: ignore[dict-item]
    decision = await engine.decide({**INPUT, "subject": subject})
    assert decision.allow and engine.reads_operation_args is embedded.reads_operation_args
    event = sink.events[0]
    assert event["bundles"] == {"citygraph": {"revision": embedded.revision}}
    assert event["result"]["reasons"] == list(decision.reasons)  # type: ignore[index]
    assert event["erased"] == ["/input/operation/args"]
    await engine.aclose()


# --- logging never changes a decision ------------------------------------------------------------


async def test_a_sink_that_raises_never_changes_a_decision() -> None:
    for answer in (ALLOW, {"allow": False, "reasons": ["no"]}):
        expected = await StaticPolicyEngine(lambda _doc: answer).decide(INPUT)  # noqa: B023 -- awaited here
        engine, _ = logging_engine(answer, sink=RaisingSink())
        before = failures("write")
        assert await engine.decide(INPUT) == expected
        assert failures("write") == before + 1


async def test_an_unreachable_receiver_never_changes_a_decision() -> None:
    sink = HttpSink(f"http://127.0.0.1:{free_port()}/logs", retries=0, flush_interval_s=60, close_timeout_s=1)
    engine = LoggingEngine(
        StaticPolicyEngine(lambda _doc: ALLOW), sink, labels={"id": "x"}, engine_name="opa", mask=None
    )
    assert (await engine.decide(INPUT)).allow
    before = failures("upload")
    await sink.flush()
    assert failures("upload") == before + 1 and sink.queued == 1  # requeued, not lost
    await engine.aclose()
    assert sink.dropped == 1


async def test_cache_hits_are_not_logged_as_evaluations() -> None:
    engine, sink = logging_engine()
    cached = CachingEngine(engine)
    await cached.decide(INPUT)
    await cached.decide({**INPUT, "context": {**INPUT["context"], "request_id": "req-2"}})  # type: ignore[dict-item]
    assert cached.hits == 1 and len(sink.events) == 1


# --- the rotating file ---------------------------------------------------------------------------


def numbered(n: int) -> Event:
    return {"n": n, "note": "执法检查" * 5}  # 60 bytes of UTF-8 in 20 characters


def test_rotation_by_bytes(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    sink = JsonlFileSink(path, max_bytes=300, backups=2)
    for n in range(40):
        sink.write(numbered(n))
    files = [path, path.with_name("decisions.jsonl.1"), path.with_name("decisions.jsonl.2")]
    assert all(f.exists() for f in files) and not path.with_name("decisions.jsonl.3").exists()
    kept: list[int] = []
    for f in reversed(files):
        data = f.read_bytes()
        assert 0 < len(data) <= 300 and data.endswith(b"\n")
        kept.extend(json.loads(line)["n"] for line in data.decode("utf-8").splitlines())
    assert kept == list(range(40 - len(kept), 40))  # the newest events, in order, none split


def test_rotation_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    sink = JsonlFileSink(path, max_bytes=50, backups=0)
    sink.write(numbered(1))  # longer than max_bytes: written alone
    sink.write(numbered(2))
    assert [json.loads(line)["n"] for line in path.read_text(encoding="utf-8").splitlines()] == [2]
    assert not path.with_name("decisions.jsonl.1").exists()
    with pytest.raises(ValueError):
        JsonlFileSink(path, max_bytes=0)


def test_file_errors_raise_and_recover(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    sink = JsonlFileSink(blocker / "decisions.jsonl")
    with pytest.raises(OSError):
        sink.write(numbered(1))
    blocker.unlink()
    sink.write(numbered(2))
    assert json.loads((blocker / "decisions.jsonl").read_text())["n"] == 2


# --- the HTTP sink, against a real local receiver --------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """An OPA ``/logs`` receiver: records gunzipped batches per path; ``plan`` queues failure statuses."""

    def __init__(self) -> None:
        self.batches: dict[str, list[list[Event]]] = defaultdict(list)
        self.headers: dict[str, Mapping[str, str]] = {}
        self.attempts: dict[str, int] = defaultdict(int)
        self.plan: dict[str, deque[int]] = defaultdict(deque)
        self.url = ""

    async def logs(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.attempts[name] += 1
        if self.plan[name]:
            return Response(status_code=self.plan[name].popleft())
        body = gzip.decompress(await request.body())
        self.headers[name] = dict(request.headers)
        self.batches[name].append(json.loads(body))
        return Response(status_code=200)

    def sink(self, name: str, **options: object) -> HttpSink:
        settings: dict[str, object] = {"batch_size": 3, "flush_interval_s": 30.0, "retries": 3, "backoff_s": 0.01}
        settings.update(options)
        return HttpSink(f"{self.url}/logs/{name}", **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/logs/{name}", rec.logs, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.02)
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def events(n: int, start: int = 0) -> list[Event]:
    return [{"decision_id": f"d-{i}", "input": {"case_ref": "甬市监案〔2026〕17号"}} for i in range(start, start + n)]


def ids(batches: list[list[Event]]) -> list[list[object]]:
    return [[event["decision_id"] for event in batch] for batch in batches]


async def test_http_sink_batches_and_gzips(receiver: Receiver) -> None:
    sink = receiver.sink("batches", headers={"Authorization": "Bearer log-token"})
    for event in events(7):
        sink.write(event)
    # the two full batches go without a flush, from the background task; d-6 waits for the interval
    await eventually(lambda: len(receiver.batches["batches"]) >= 2)
    await asyncio.sleep(0.1)
    assert ids(receiver.batches["batches"]) == [["d-0", "d-1", "d-2"], ["d-3", "d-4", "d-5"]] and sink.queued == 1
    await sink.flush()
    assert ids(receiver.batches["batches"])[-1] == ["d-6"]
    headers = receiver.headers["batches"]
    assert headers["content-encoding"] == "gzip" and headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer log-token"
    assert receiver.batches["batches"][0][0]["input"] == {"case_ref": "甬市监案〔2026〕17号"}
    assert sink.sent == 7 and sink.queued == 0
    await sink.aclose()


async def test_http_sink_retries_when_the_receiver_fails(receiver: Receiver) -> None:
    receiver.plan["retry"].extend([503, 500])
    sink = receiver.sink("retry")
    for event in events(2):
        sink.write(event)
    await sink.flush()
    assert receiver.attempts["retry"] == 3 and ids(receiver.batches["retry"]) == [["d-0", "d-1"]]
    assert sink.failed_uploads == 0
    await sink.aclose()


async def test_http_sink_requeues_after_its_retries_then_delivers_in_order(receiver: Receiver) -> None:
    receiver.plan["requeue"].extend([503, 503])
    sink = receiver.sink("requeue", retries=1)
    before = failures("upload")
    for event in events(4):
        sink.write(event)
    await sink.flush()
    assert sink.failed_uploads == 1 and sink.queued == 4 and failures("upload") == before + 1
    await sink.flush()
    assert ids(receiver.batches["requeue"]) == [["d-0", "d-1", "d-2"], ["d-3"]] and sink.dropped == 0
    await sink.aclose()


async def test_http_sink_drops_batches_the_receiver_refuses(receiver: Receiver) -> None:
    receiver.plan["refused"].append(400)
    sink = receiver.sink("refused")
    before = dropped("refused")
    for event in events(2):
        sink.write(event)
    await sink.flush()
    assert receiver.attempts["refused"] == 1 and sink.dropped == 2 and dropped("refused") == before + 2
    await sink.aclose()


async def test_http_sink_bounded_queue_drops_the_oldest(receiver: Receiver) -> None:
    sink = receiver.sink("bounded", max_queue=3, batch_size=10)
    before = dropped("queue_full")
    for event in events(5):  # no await in between: the uploader cannot run yet
        sink.write(event)
    assert sink.queued == 3 and sink.dropped == 2 and dropped("queue_full") == before + 2
    await sink.flush()
    assert ids(receiver.batches["bounded"]) == [["d-2", "d-3", "d-4"]]
    await sink.aclose()


async def test_http_sink_close_flushes_and_refuses_later_writes(receiver: Receiver) -> None:
    sink = receiver.sink("close")
    for event in events(2):
        sink.write(event)
    await sink.aclose()
    assert ids(receiver.batches["close"]) == [["d-0", "d-1"]]
    sink.write(events(1)[0])
    assert sink.dropped == 1 and sink.queued == 0


async def test_logging_engine_over_http_end_to_end(receiver: Receiver, tmp_path: Path) -> None:
    sink = receiver.sink("e2e", batch_size=100)
    engine = LoggingEngine(
        StaticPolicyEngine(lambda _doc: ALLOW, revision="r9"),
        sink,
        labels=instance_labels("gw-9"),
        engine_name="opa",
        mask=loaded_mask(mask_dir(tmp_path)),
    )
    decisions: list[Decision] = [await engine.decide(INPUT) for _ in range(3)]
    assert all(d.allow for d in decisions)
    await engine.aclose()  # flushes the sink
    (batch,) = receiver.batches["e2e"]
    assert len({e["decision_id"] for e in batch}) == 3
    assert all(e["erased"] == ["/input/operation/args"] and ID_NUMBER not in json.dumps(e) for e in batch)
    assert batch[0]["labels"] == {**instance_labels("gw-9"), "engine": "opa"}
    await engine.aclose()  # closing twice is harmless
