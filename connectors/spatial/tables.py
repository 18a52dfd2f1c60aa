"""The spatial connector's PostGIS schema: layers, feature versions and IoT readings.

One table holds every layer's feature versions (``spatial_features``), keyed by
``(layer, fid, valid_from)``, with the geometry twice: ``geom`` in the storage CRS (CGCS2000
longitude/latitude, EPSG:4490) for the spatial predicates, and ``geom_m`` in UTM zone 51N
(EPSG:32651, metres) for ``ST_DWithin``, ``ST_Distance`` and KNN ``<->``, so that distances are
metric and index-assisted. ``geom_m`` is computed by the loader with the same transformation the
embedded engine uses (``connectors.spatial.crs.metric_array``), so both backends measure the same
coordinates. ``validity`` is the half-open date range ``[valid_from, valid_to)`` (generated), and
each GiST index pairs a geometry with it: one index scan answers "where" and "when" together.

Text columns use the ``"C"`` collation: ordering and comparisons are bytewise (code point order),
as in Python and on the embedded engine, whatever the server's locale.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import DATERANGE
from sqlalchemy.types import UserDefinedType

STORAGE_SRID = 4490
METRIC_SRID = 32651


class Geometry(UserDefinedType[bytes]):
    """A PostGIS ``geometry(Geometry, srid)`` column; read and written as (E)WKB by the queries."""

    cache_ok = True

    def __init__(self, srid: int) -> None:
        self.srid = srid

    def get_col_spec(self, **kw: Any) -> str:
        return f"geometry(Geometry,{self.srid})"


def _text(name: str, *, nullable: bool = True) -> Column[str]:
    return Column(name, Text(collation="C"), nullable=nullable)


metadata = MetaData()

spatial_layers = Table(
    "spatial_layers",
    metadata,
    _text("name", nullable=False),
    _text("title", nullable=False),
    _text("geometry_type", nullable=False),
    #: Which of the filterable columns (kind, district_code, uscc) the layer has, comma-separated.
    _text("filterable", nullable=False),
    PrimaryKeyConstraint("name"),
)

spatial_features = Table(
    "spatial_features",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    _text("layer", nullable=False),
    _text("fid", nullable=False),
    _text("kind"),
    _text("name"),
    _text("district_code"),
    _text("uscc"),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=True),
    Column("validity", DATERANGE, Computed("daterange(valid_from, valid_to, '[)')", persisted=True)),
    Column("properties", JSON, nullable=False),
    Column("geom", Geometry(STORAGE_SRID), nullable=False),
    Column("geom_m", Geometry(METRIC_SRID), nullable=False),
    UniqueConstraint("layer", "fid", "valid_from", name="uq_spatial_features_version"),
    # The layer first (btree_gist): every query names its layers, and one scan then answers
    # layer, place and day together (spatial_0002 says why).
    Index("ix_spatial_features_geom", "layer", "geom", "validity", postgresql_using="gist"),
    Index("ix_spatial_features_geom_m", "layer", "geom_m", "validity", postgresql_using="gist"),
    Index("ix_spatial_features_uscc", "layer", "uscc"),
)

spatial_readings = Table(
    "spatial_readings",
    metadata,
    _text("device_id", nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_spatial_readings_device_ts", "device_id", "ts"),
)

__all__ = [
    "METRIC_SRID",
    "STORAGE_SRID",
    "Geometry",
    "metadata",
    "spatial_features",
    "spatial_layers",
    "spatial_readings",
]
