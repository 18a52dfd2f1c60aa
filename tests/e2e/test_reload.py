"""Hot reload under load: a broken bundle is refused, nothing fails open, the last good one serves."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, TokenFactory, make_settings, serve

#: Seconds a control-plane call may take: a reload runs the bundle's Rego tests in a child process
#: while the hammer keeps the server busy, which took over httpx's default 5 s on a slow 2-core VM.
SLOW = 60.0
QUERY = {"query": "{ creditRecords(first: 5) { nodes { title amount legalRepIdNumber } } }"}
# Allows everything and fails its own tests: must never become active.
BROKEN = """package citygraph.credit

decision := {"allow": true, "filter": {}, "fields": {}, "obligations": {}, "reasons": ["oops"]}
"""


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_broken_bundle_never_serves_and_a_good_one_does(demo_dir: Path, tmp_path: Path, token: TokenFactory) -> None:
    rego = tmp_path / "rego"
    shutil.copytree(ROOT / "policies" / "rego", rego)
    settings = make_settings(demo_dir, audit={"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"})
    settings = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"rego_dir": rego, "watch_interval_s": 0.2})}
    )
    with serve(settings) as live:

        def ready() -> dict[str, Any]:
            policy: dict[str, Any] = httpx.get(f"{live.url}/readyz", timeout=SLOW).json()["checks"]["policy"]
            return policy

        first = ready()["revision"]
        answers: list[dict[str, object]] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=live.url, timeout=30) as client:
                while not stop.is_set():
                    answers.append(client.post("/graphql", json=QUERY).json())

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            (rego / "credit.rego").write_text(BROKEN)
            wait_for(lambda: "last failed revision" in ready()["detail"])
            assert ready()["revision"] == first and ready()["ok"] is True
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join()
        assert answers
        for body in answers:  # every answer is the public's answer under the good bundle
            for node in body["data"]["creditRecords"]["nodes"]:  # type: ignore[index]
                assert node["amount"] is None and node["legalRepIdNumber"] is None
            assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}  # type: ignore[attr-defined]

        # A good change (restore the file, add a purpose) is picked up and becomes the active revision.
        shutil.copy(ROOT / "policies" / "rego" / "credit.rego", rego / "credit.rego")
        data = (
            (rego / "data.json")
            .read_text()
            .replace('"audit_inspection"', '"tax_inspection": {"name": "税务检查"},\n      "audit_inspection"')
        )
        (rego / "data.json").write_text(data)
        wait_for(lambda: ready()["revision"] != first and "last failed" not in ready()["detail"])

        # The admin call: security officers only.
        officer = token(dept="cyberspace_office", roles=["security_officer"], clearance=3)
        refused = httpx.post(
            f"{live.url}/admin/policy/reload", headers={"Authorization": f"Bearer {token(clearance=4)}"}, timeout=SLOW
        )
        assert refused.status_code == 403
        done = httpx.post(
            f"{live.url}/admin/policy/reload", headers={"Authorization": f"Bearer {officer}"}, timeout=SLOW
        )
        assert done.status_code == 200 and done.json()["ok"] is True and done.json()["active"] == ready()["revision"]
