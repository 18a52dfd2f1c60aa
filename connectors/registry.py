"""Discover connectors through the ``citygraph.connectors`` entry-point group; enable by config.

An installed connector stays off until the configuration names it (default deny). Built-in
connectors are discovered the same way as a department's own package; tests pass ``classes`` so
they never depend on what happens to be installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from connectors.base import JSON, Connector
from connectors.errors import ConnectorConfigError

GROUP = "citygraph.connectors"


def available() -> dict[str, type[Connector]]:
    """Every installed connector class by entry-point name (loading only imports it)."""
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if not isinstance(cls, type):
            raise ConnectorConfigError(f"entry point {ep.name} does not name a class")
        found[ep.name] = cls
    return found


def enable(
    config: Mapping[str, Mapping[str, JSON]],
    data_dir: Path,
    *,
    only: frozenset[str] | None = None,
    classes: Mapping[str, type[Connector]] | None = None,
) -> dict[str, Connector]:
    """Build (unopened) the connectors named in ``config``; unknown names fail startup."""
    installed = dict(classes) if classes is not None else available()
    enabled: dict[str, Connector] = {}
    for name, options in config.items():
        if only is not None and name not in only:
            continue
        if options.get("enabled", True) is False:
            continue
        cls = installed.get(name)
        if cls is None:
            known = ", ".join(sorted(installed)) or "none"
            raise ConnectorConfigError(f"connector {name!r} is configured but not installed (installed: {known})")
        connector = cls.from_config(options, data_dir)
        if not isinstance(connector, Connector):
            raise ConnectorConfigError(f"connector {name!r} does not implement the Connector protocol")
        enabled[name] = connector
    return enabled


__all__ = ["GROUP", "available", "enable"]
