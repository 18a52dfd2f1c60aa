"""The gateway's log lines: JSON on standard output, one per event, filtered by level."""

from __future__ import annotations

import logging
import os

import structlog


def configure_logging(level: str = "info") -> None:
    """JSON lines on standard output (``CITYGRAPH_PRETTY_LOGS=1``: for people), ``level`` and above.

    Lines below ``level`` are dropped before any processor runs: the per-decision debug lines
    would otherwise cost a timestamp and a JSON encoding each on every request.
    """
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer()
            if not os.environ.get("CITYGRAPH_PRETTY_LOGS")
            else structlog.dev.ConsoleRenderer(),
        ],
    )


__all__ = ["configure_logging"]
