"""The spatio-temporal information cloud (时空信息云) connector."""

from __future__ import annotations

from connectors.spatial.connector import SpatialConnector

__all__ = ["SpatialConnector"]
