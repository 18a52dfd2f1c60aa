"""Decision logs from a running gateway: OPA's event format, masked before they are written."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edge.settings import DecisionLogSettings
from tests.conftest import TokenFactory, make_settings, serve


def test_every_evaluation_is_logged_in_opa_format_with_args_erased(
    demo_dir: Path, tmp_path: Path, token: TokenFactory
) -> None:
    log_file = tmp_path / "decisions.jsonl"
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    policy = settings.policy.model_copy(update={"decision_log": DecisionLogSettings(file=log_file), "cache_ttl_s": 0})
    settings = settings.model_copy(update={"policy": policy})
    with serve(settings) as live:
        body = live.post(
            '{ creditRecords(first: 2, filter: {district: "330203"}) { nodes { id } } }',
            token(dept="market_supervision"),
            headers={"X-Request-Id": "req-decision-log-1"},
        ).json()
        assert "errors" not in body
        deadline = time.monotonic() + 10
        while not log_file.exists() or not log_file.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    [event] = [e for e in events if e["request_id"] == "req-decision-log-1"]
    assert event["path"] == "citygraph/authz/decision" and event["decision_id"] and event["timestamp"].endswith("Z")
    assert event["result"]["allow"] is True and event["bundles"]["citygraph"]["revision"]
    assert event["labels"]["engine"] == "embedded" and event["metrics"]["timer_rego_query_eval_ns"] > 0
    assert "args" not in event["input"]["operation"] and "/input/operation/args" in event["erased"]
    assert event["input"]["subject"]["department"] == "market_supervision"
