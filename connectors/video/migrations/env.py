"""Alembic environment of the video resource library: the target is ``connectors.video.tables.metadata``."""

from __future__ import annotations

from connectors.migrate import run_env
from connectors.video.tables import metadata

run_env(metadata, component="video")
