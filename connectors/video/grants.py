"""Policy obligations on video reads: recording windows, and issuing signed stream URLs.

Both fail closed: a decision without a readable ``max_window_s`` / ``url_ttl_s`` obligation
refuses the read, and a URL is handed out only after its audit record is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from audit import AuditEntry, AuditWriteError
from policies.decision import Decision
from resolvers import coded_error
from resolvers.context import RequestContext

if TYPE_CHECKING:
    from connectors.video.connector import VideoConnector

CITY_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
#: ``record_keys`` type under which an issuance names its grant id (``jti`` of the URL).
GRANT_KEY = "StreamGrant"


def _obligation(decision: Decision, name: str) -> int:
    value = decision.obligations.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise coded_error("FORBIDDEN", f"The policy set no {name} obligation for this read, so it is refused.")
    return value


def window(decision: Decision, start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """The recordings window ``[start, end)`` checked against the decision's ``max_window_s``.

    ``end`` defaults to now and ``start`` to ``end`` minus the maximum. Raises BAD_USER_INPUT for
    a window without a zone or ending before it starts, FORBIDDEN for one longer than the policy allows.
    """
    limit = _obligation(decision, "max_window_s")
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.utcoffset() is None:
            raise coded_error("BAD_USER_INPUT", f"{name} needs a time zone, e.g. 2026-11-27T08:00:00+08:00")
    end = end or dt.datetime.now(dt.UTC)
    start = start or end - dt.timedelta(seconds=limit)
    if end <= start:
        raise coded_error("BAD_USER_INPUT", "to must be after from")
    span = (end - start).total_seconds()
    if span > limit:
        raise coded_error(
            "FORBIDDEN",
            f"The recordings window is {span / 3600:g} h; the policy allows at most {limit / 3600:g} h per request. "
            "Ask for a shorter window.",
        )
    return start, end


def _connector(ctx: RequestContext) -> VideoConnector:
    from connectors.video.connector import VideoConnector

    connector = ctx.runtime.connectors.get("video")
    if not isinstance(connector, VideoConnector):
        raise coded_error("CONNECTOR_UNAVAILABLE", "The video connector is not enabled.")
    return connector


async def issue(
    ctx: RequestContext,
    decision: Decision,
    stream: object,
    type_name: str,
    protocol: str,
    path: str,
    coordinate: str,
    keys: Mapping[str, str],
) -> None:
    """Sign a URL for ``path`` into ``stream.url`` / ``stream.expires_at`` and audit the issuance.

    Nothing is signed when the decision on the stream's type ``type_name`` denies its ``url``
    field, selected or not (the plan says so; a row holds no URL, so an unselected field's denial
    is on no record), when the request has no plan for that type (fail closed), or when no purpose
    was declared; the URL is set only after its audit record is written.
    """
    plan = ctx.plans.get(type_name)
    if plan is None or plan.denies("url"):  # the plan made the records: a denied url is in it
        return
    purpose = ctx.purpose.code
    if not purpose:
        raise coded_error("PURPOSE_REQUIRED")
    ttl = _obligation(decision, "url_ttl_s")
    connector = _connector(ctx)
    device_id = str(getattr(stream, "device_id", ""))
    grant = connector.signer.issue(
        connector.base_urls[protocol],
        path,
        subject=ctx.principal.subject,
        department=ctx.principal.department,
        purpose=purpose,
        case_ref=ctx.purpose.case_ref,
        ttl_s=ttl,
    )
    entry = AuditEntry(
        request_id=ctx.request_id,
        subject=ctx.principal.subject,
        department=ctx.principal.department,
        purpose=purpose,
        case_ref=ctx.purpose.case_ref,
        operation_name=f"stream:{coordinate}",
        document_hash=hashlib.sha256(grant.path.encode()).hexdigest(),
        coordinates=(coordinate,),
        record_keys={GRANT_KEY: (grant.grant_id,), "Camera": (device_id,), **{k: (v,) for k, v in keys.items()}},
        policy_revision=ctx.runtime.engine.status().revision,
        outcome="ok",
        classification=3,
    )
    try:
        await ctx.runtime.audit.append(entry)
    except AuditWriteError as exc:
        raise coded_error(
            "AUDIT_UNAVAILABLE", "The audit trail could not record this stream URL, so none is issued."
        ) from exc
    # A new __dict__, not an update of it: an object may hold the very dict its connector returned
    # (resolvers.records.materialize), which must not carry this request's URL anywhere else.
    expires_at = dt.datetime.fromtimestamp(grant.expires_at, CITY_TZ)
    stream.__dict__ = {**stream.__dict__, "url": grant.url, "expires_at": expires_at}


__all__ = ["CITY_TZ", "GRANT_KEY", "issue", "window"]
