"""The video resource library (视频资源库): cameras, recordings and signed stream access."""

from __future__ import annotations

from connectors.video.connector import VideoConnector

__all__ = ["VideoConnector"]
