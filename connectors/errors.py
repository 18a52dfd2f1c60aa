"""The one exception tree connectors raise.

    ConnectorError
    ├── ConnectorConfigError      bad or missing configuration (startup fails)
    ├── ConnectorUnavailable      backend down, failing or too slow (-> CONNECTOR_UNAVAILABLE)
    │   └── ConnectorTimeout      the per-connector timeout elapsed
    ├── FilterError               a row filter the connector cannot apply safely (-> deny)
    │   └── UnknownFilterField    a filter names a field outside the connector's allowlist
    └── InvalidArgument           a client argument the connector cannot use, e.g. a forged
                                  cursor (-> BAD_USER_INPUT, the message is shown to the client)

Anything else a connector raises is a bug; the gateway treats it like ConnectorUnavailable and
logs it, so no stack trace reaches a client.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every error a connector raises on purpose."""


class ConnectorConfigError(ConnectorError):
    """The connector's configuration is invalid; the message says which key and why."""


class ConnectorUnavailable(ConnectorError):
    """The backend could not answer; the fields it serves resolve to null."""


class ConnectorTimeout(ConnectorUnavailable):
    """The backend did not answer within the connector's timeout."""


class FilterError(ConnectorError):
    """A policy row filter cannot be translated; the read is denied, never run unfiltered."""


class UnknownFilterField(FilterError):
    """A filter names a field that is not in the connector's allowlist."""


class InvalidArgument(ConnectorError):
    """A client-supplied argument is unusable; the message tells the client what to fix."""


__all__ = [
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorTimeout",
    "ConnectorUnavailable",
    "FilterError",
    "InvalidArgument",
    "UnknownFilterField",
]
