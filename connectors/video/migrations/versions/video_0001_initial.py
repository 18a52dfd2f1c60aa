"""The video resource library's cameras and recordings, with the indexes its filters and searches use.

Revision ID: video_0001
Revises:
Create Date: 2026-11-28

The CHECK constraints are spelled out (not built from ``connectors.video.tables``' constants):
a revision is a snapshot, and a new camera kind or status is a new revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "video_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("device_id", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("owner_uscc", sa.String(length=18), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('FIXED', 'PTZ', 'DOME')", name="ck_cameras_kind"),
        sa.CheckConstraint("status IN ('ONLINE', 'OFFLINE', 'FAULT')", name="ck_cameras_status"),
        sa.CheckConstraint(
            "owner IN ('public_security', 'transport', 'urban_management', 'enterprise')", name="ck_cameras_owner"
        ),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_index("ix_cameras_district", "cameras", ["district_code", "device_id"])
    op.create_index("ix_cameras_owner", "cameras", ["owner", "device_id"])
    op.create_index("ix_cameras_status", "cameras", ["status", "device_id"])
    op.create_index("ix_cameras_position", "cameras", ["lon", "lat"])
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("device_id", sa.String(length=20), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage_tier", sa.String(length=8), nullable=False),
        sa.Column("retention_until", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("storage_tier IN ('HOT', 'WARM', 'COLD')", name="ck_recordings_tier"),
        sa.CheckConstraint("end_at > start_at", name="ck_recordings_window"),
        sa.ForeignKeyConstraint(["device_id"], ["cameras.device_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recordings_device_start", "recordings", ["device_id", "start_at"])


def downgrade() -> None:
    op.drop_index("ix_recordings_device_start", table_name="recordings")
    op.drop_table("recordings")
    for name in ("ix_cameras_position", "ix_cameras_status", "ix_cameras_owner", "ix_cameras_district"):
        op.drop_index(name, table_name="cameras")
    op.drop_table("cameras")
