"""Alembic environment of the audit trail: the target is ``audit.trail.metadata``."""

from __future__ import annotations

from audit.trail import metadata
from connectors.migrate import run_env

run_env(metadata, component="audit")
