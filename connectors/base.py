"""The connector contract: what a department system implements to join the graph.

A connector owns some GraphQL types (its *entities*) and contributes root fields and link fields
to the schema. The gateway calls it with keys in batches (one call per DataLoader batch) and with
the policy decision's row filter, which the connector must push into its backend: a connector
never returns a row that the filter excludes.

Records are plain mappings from the entity's Python field names (snake_case, the strawberry
attribute names) to values. Values are JSON-compatible scalars or ``date``/``datetime``/``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol, Self, runtime_checkable

JSON = str | int | float | bool | None | Sequence["JSON"] | Mapping[str, "JSON"]
Record = Mapping[str, object]
#: An OPA UCAST node (see ``policies/ucast.py``); ``{}`` means unrestricted.
RowFilter = Mapping[str, JSON]


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    """Who the connector is and which GraphQL types it owns."""

    name: str
    department: str
    version: str
    entities: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connector can do; the compliance suite runs the tests these enable."""

    fetch_by_keys: bool = True
    fetch_related: bool = False
    search: bool = False
    pagination: bool = False


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """Look up ``entity`` records by key, under ``row_filter``.

    ``by`` is ``None`` for the entity's primary key, otherwise the name of a relation key the
    connector declared (``fetch_related``), e.g. ``"uscc"`` for an enterprise's credit records.
    ``args`` carries field arguments that narrow a relation (e.g. record kinds). ``fields`` names
    the fields (Python names) the operation selects on the entity under this connector's
    decision, for projection (``connectors.sql.projected``): empty when it selects only links,
    ``None`` when not known (read everything).
    """

    entity: str
    keys: Sequence[str]
    fields: frozenset[str] | None
    row_filter: RowFilter
    by: str | None = None
    args: Mapping[str, JSON] = field(default_factory=dict)
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One page of ``entity`` records matching ``where`` and ``row_filter``.

    ``where`` holds the client's criteria, keyed by names the connector documents; values are
    already validated by the schema. ``after`` is an opaque cursor the connector issued.
    ``fields`` as in :class:`FetchRequest`.
    """

    entity: str
    fields: frozenset[str] | None
    row_filter: RowFilter
    where: Mapping[str, JSON] = field(default_factory=dict)
    first: int = 50
    after: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of records, one opaque cursor per record, and whether more follow."""

    records: Sequence[Record]
    cursors: Sequence[str]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        """The cursor of the last record (Relay's ``pageInfo.endCursor``)."""
        return self.cursors[-1] if self.cursors else None


@dataclass(frozen=True, slots=True)
class SchemaContribution:
    """The strawberry types and fields a connector adds to the graph.

    ``query`` is a strawberry type whose fields are merged into ``Query``. ``entity_fields`` maps
    an entity type name shared across connectors (``"Enterprise"``) to a strawberry type whose
    fields are merged into it (plain fields the owner also declares are served by the owner;
    other connectors add link fields). ``types`` are further types the connector owns (record
    types returned by ``fetch_many``, ``fetch_related`` and ``search`` are named by their GraphQL
    type name).
    """

    query: type | None = None
    types: tuple[type, ...] = ()
    entity_fields: Mapping[str, type] = field(default_factory=dict)
    #: The key field (Python name) of each record type this connector returns, for the audit trail.
    keys: Mapping[str, str] = field(default_factory=dict)
    #: Shared entities this connector can materialise by key, with a priority: of the enabled
    #: connectors, the one with the highest priority owns the entity (answers ``Query.enterprise``
    #: and every link to it, and serves its plain fields).
    owns: Mapping[str, int] = field(default_factory=dict)
    #: Entities whose records are of another GraphQL type, e.g. ``LicenseDocument`` (a separate
    #: decision, with its own row filter) returning ``LicenseVerification`` records.
    record_types: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Health:
    """Readiness of a connector's backend."""

    ok: bool
    detail: str = ""


@runtime_checkable
class Connector(Protocol):
    """What every department connector implements."""

    info: ClassVar[ConnectorInfo]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def from_config(cls, config: Mapping[str, JSON], data_dir: Path) -> Self:
        """Validate config and build an unopened connector; raise ConnectorConfigError."""
        ...

    def schema(self) -> SchemaContribution:
        """Return the GraphQL types and fields this connector adds to the graph."""
        ...

    async def open(self) -> None:
        """Acquire pools and clients; called once from the gateway lifespan."""
        ...

    async def aclose(self) -> None:
        """Release what open() acquired; safe to call twice."""
        ...

    async def health(self) -> Health:
        """Report readiness without raising."""
        ...

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        """Return one record or None per key, in key order (the DataLoader contract)."""
        ...

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        """Return the records related to each key, in key order; only if capabilities say so."""
        ...

    async def search(self, request: SearchRequest) -> Page:
        """Return one page of records; only if capabilities.search."""
        ...


__all__ = [
    "JSON",
    "Capabilities",
    "Connector",
    "ConnectorInfo",
    "FetchRequest",
    "Health",
    "Page",
    "Record",
    "RowFilter",
    "SchemaContribution",
    "SearchRequest",
]
