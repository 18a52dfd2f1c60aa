"""connectors.video.grants.issue: a signed URL lands on the stream object alone, never in the
row its connector returned (materialize may hand that very dict to the object)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from audit import AuditTrail
from connectors.video.connector import VideoConnector
from connectors.video.grants import issue
from connectors.video.types import LiveStream
from policies.decision import Decision
from policies.engine import StaticPolicyEngine
from policies.principal import Principal, Purpose
from resolvers.context import RequestContext, Runtime
from resolvers.errors import coded_error
from resolvers.records import RecordPlan, materialize
from schema.fieldmeta import FieldCatalog

ROW = {"device_id": "33020315081326000001", "protocol": "HLS", "camera_status": "ONLINE"}
DECISION = Decision(allow=True, obligations={"url_ttl_s": 60})


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[RequestContext]:
    """A police officer's request context over a video connector and an open audit trail."""
    connector = VideoConnector.from_config({"stream_key_file": str(tmp_path / "key")}, tmp_path)
    audit = AuditTrail(f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}")
    await audit.open()
    try:
        runtime = Runtime(
            connectors={"video": connector}, engine=StaticPolicyEngine(lambda doc: {}), audit=audit,
            catalog=FieldCatalog({}), types={}, keys={}, owners={}, record_types={}, timeouts={},
        )  # fmt: skip
        principal = Principal("officer-li", "public_security", frozenset({"police"}), frozenset(), 4)
        yield RequestContext(runtime, principal, Purpose("case_investigation", "GA-1"), request_id="r1")
    finally:
        await audit.aclose()


async def test_a_signed_url_is_not_written_into_the_connectors_row(context: RequestContext) -> None:
    row = dict(ROW)
    plan = context.plans["LiveStream"] = RecordPlan((), ())
    (stream,) = materialize([row], LiveStream, plan)
    assert vars(stream) is row  # no mask, no denial: the row itself
    await issue(context, DECISION, stream, "LiveStream", "HLS", "live/x/index.m3u8", "Camera.liveStream", {})
    assert vars(stream)["url"].startswith("https://") and vars(stream)["expires_at"] is not None
    assert row == ROW
    assert len(await context.runtime.audit.records(limit=10)) == 1


async def test_nothing_is_signed_when_the_plan_denies_the_url_selected_or_not(context: RequestContext) -> None:
    """An unselected URL's denial is on no record (no row holds a URL): the plan decides, and a
    request without a plan for the stream's type signs nothing either."""
    for plans in ({"LiveStream": RecordPlan((), (), (("url", coded_error("FORBIDDEN")),))}, {}):
        context.plans.clear()
        context.plans.update(plans)
        (stream,) = materialize([dict(ROW)], LiveStream, plans.get("LiveStream", RecordPlan((), ())))
        assert "url" not in vars(stream)  # the unread denial: not on a record without the field
        await issue(context, DECISION, stream, "LiveStream", "HLS", "live/x/index.m3u8", "Camera.liveStream", {})
        assert "url" not in vars(stream) and "expires_at" not in vars(stream)
    assert await context.runtime.audit.records(limit=10) == []  # no grant, no audit record
