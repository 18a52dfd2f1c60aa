"""Shared plumbing for connectors backed by SQLAlchemy: engines, statement counting, cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.base import JSON
from connectors.errors import ConnectorConfigError, InvalidArgument

#: Statements sent to each connector's backend; the benchmark and tests read it.
STATEMENTS = Counter("citygraph_backend_statements", "SQL statements sent to backends", ["connector"])


def make_engine(connector: str, url: str, options: Mapping[str, JSON]) -> AsyncEngine:
    """An async engine with pool settings from config and a statement counter attached."""
    kwargs: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        for key in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"):
            if key in options:
                kwargs[key] = options[key]
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_async_engine(url, **kwargs)
    except Exception as exc:
        raise ConnectorConfigError(f"{connector}: cannot use database URL: {exc}") from exc
    counter = STATEMENTS.labels(connector=connector)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_: object) -> None:
        counter.inc()

    return engine


def encode_cursor(*parts: object) -> str:
    """An opaque cursor for keyset pagination."""
    raw = "|".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(f"v1|{raw}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The parts of a cursor from ``encode_cursor``; raises InvalidArgument when forged or stale."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument("after: not a cursor issued by this API") from exc
    parts = raw.split("|")
    if len(parts) != count + 1 or parts[0] != "v1":
        raise InvalidArgument("after: not a cursor issued by this API")
    return parts[1:]


__all__ = ["STATEMENTS", "decode_cursor", "encode_cursor", "make_engine"]
