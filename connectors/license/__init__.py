"""The e-license store (电子证照库) connector."""

from __future__ import annotations

from connectors.license.connector import LicenseConnector

__all__ = ["LicenseConnector"]
