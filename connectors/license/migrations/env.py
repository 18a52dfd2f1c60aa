"""Alembic environment of the e-license store: the target is ``connectors.license.tables.metadata``
(not the demo databases' ``demo_cases`` table, which production never has)."""

from __future__ import annotations

from connectors.license.tables import metadata
from connectors.migrate import run_env

run_env(metadata, component="license")
