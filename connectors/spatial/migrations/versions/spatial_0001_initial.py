"""The spatial connector on PostGIS: layers, feature versions with GiST (geometry, validity) indexes, readings.

Revision ID: spatial_0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from connectors.spatial.tables import Geometry

revision = "spatial_0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, *, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.Text(collation="C"), nullable=nullable)


def upgrade() -> None:
    # Needs a role allowed to create it (a superuser or the database owner on PostGIS >= 3 when
    # trusted); a DBA may create it beforehand, and then this is a no-op.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "spatial_layers",
        _text("name", nullable=False),
        _text("title", nullable=False),
        _text("geometry_type", nullable=False),
        _text("filterable", nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "spatial_features",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        _text("layer", nullable=False),
        _text("fid", nullable=False),
        _text("kind"),
        _text("name"),
        _text("district_code"),
        _text("uscc"),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column(
            "validity", postgresql.DATERANGE(), sa.Computed("daterange(valid_from, valid_to, '[)')", persisted=True)
        ),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("geom", Geometry(4490), nullable=False),
        sa.Column("geom_m", Geometry(32651), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("layer", "fid", "valid_from", name="uq_spatial_features_version"),
    )
    op.create_index("ix_spatial_features_geom", "spatial_features", ["geom", "validity"], postgresql_using="gist")
    op.create_index("ix_spatial_features_geom_m", "spatial_features", ["geom_m", "validity"], postgresql_using="gist")
    op.create_index("ix_spatial_features_uscc", "spatial_features", ["layer", "uscc"])
    op.create_table(
        "spatial_readings",
        _text("device_id", nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
    )
    op.create_index("ix_spatial_readings_device_ts", "spatial_readings", ["device_id", "ts"])


def downgrade() -> None:
    op.drop_table("spatial_readings")
    op.drop_table("spatial_features")
    op.drop_table("spatial_layers")
