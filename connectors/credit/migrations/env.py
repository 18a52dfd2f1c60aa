"""Alembic environment of the credit platform: the target is ``connectors.credit.tables.metadata``."""

from __future__ import annotations

from connectors.credit.tables import metadata
from connectors.migrate import run_env

run_env(metadata, component="credit")
