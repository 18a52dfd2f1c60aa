"""The public credit platform (公共信用信息平台) connector."""

from __future__ import annotations

from connectors.credit.connector import CreditConnector

__all__ = ["CreditConnector"]
