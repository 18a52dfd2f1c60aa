"""The video resource library's tables (视频资源库; SQLAlchemy Core, SQLite by default, any URL).

:data:`cameras` are keyed by their GB/T 28181 device id and located by longitude/latitude in
CGCS2000 (``EPSG:4490``, the spatial connector's storage CRS); ``(lon, lat)`` is indexed for the
bounding-box prefilter of ``near`` queries. :data:`recordings` are the stored segments of each
camera, by time window. Timestamps are UTC (``timestamptz`` on PostgreSQL, naive UTC text on SQLite).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
)

#: Camera kinds: 枪机 fixed, 云台 PTZ, 球机 dome.
CAMERA_KINDS = ("FIXED", "PTZ", "DOME")
#: Camera status: 在线, 离线, 故障.
CAMERA_STATUSES = ("ONLINE", "OFFLINE", "FAULT")
#: Owning departments (department codes as in tokens); ``enterprise`` cameras also name the USCC.
OWNERS = ("public_security", "transport", "urban_management", "enterprise")
#: Where a recording is stored: hot (SSD, last 7 days), warm (disk), cold (archive).
STORAGE_TIERS = ("HOT", "WARM", "COLD")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = MetaData()

cameras = Table(
    "cameras",
    metadata,
    Column("device_id", String(20), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("district_code", String(6), nullable=False),
    Column("owner", String(32), nullable=False),
    Column("owner_uscc", String(18), nullable=True),
    Column("kind", String(8), nullable=False),
    Column("status", String(8), nullable=False),
    Column("last_heartbeat", DateTime(timezone=True), nullable=True),
    CheckConstraint(_one_of("kind", CAMERA_KINDS), name="ck_cameras_kind"),
    CheckConstraint(_one_of("status", CAMERA_STATUSES), name="ck_cameras_status"),
    CheckConstraint(_one_of("owner", OWNERS), name="ck_cameras_owner"),
    # Listings page by device id: each filterable column is indexed together with that order.
    Index("ix_cameras_district", "district_code", "device_id"),
    Index("ix_cameras_owner", "owner", "device_id"),
    Index("ix_cameras_status", "status", "device_id"),
    Index("ix_cameras_position", "lon", "lat"),
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", String(40), primary_key=True),  # "<device id>-<start, UTC, YYYYmmddHHMM>"
    Column("device_id", String(20), ForeignKey("cameras.device_id"), nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("storage_tier", String(8), nullable=False),
    Column("retention_until", DateTime(timezone=True), nullable=False),
    CheckConstraint(_one_of("storage_tier", STORAGE_TIERS), name="ck_recordings_tier"),
    CheckConstraint("end_at > start_at", name="ck_recordings_window"),
    Index("ix_recordings_device_start", "device_id", "start_at"),
)

__all__ = ["CAMERA_KINDS", "CAMERA_STATUSES", "OWNERS", "STORAGE_TIERS", "cameras", "metadata", "recordings"]
