"""Alembic environment of the spatial connector's PostGIS schema (``connectors.spatial.tables``)."""

from __future__ import annotations

from connectors.migrate import run_env
from connectors.spatial.tables import metadata

run_env(metadata, component="spatial")
