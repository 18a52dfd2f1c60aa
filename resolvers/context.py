"""The per-request context resolvers read, and the gateway-wide runtime it points to.

A ``RequestContext`` is built once per HTTP request. The policy extension fills ``decisions``
(one per (connector, type)), ``fields`` and ``selected`` before any resolver runs; loaders are
created lazily, one per (connector, entity, relation), and ``returned`` collects the keys of the
records that left the connectors, for the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from policies.decision import Decision
from policies.principal import Principal, Purpose

if TYPE_CHECKING:
    from audit import AuditTrail
    from connectors.base import Connector
    from policies.engine import PolicyEngine
    from resolvers.batching import BatchLoader
    from resolvers.records import RecordPlan, RecordPlans
    from schema.fieldmeta import FieldCatalog

DecisionKey = tuple[str, str]  # (connector, type)
LoaderKey = tuple[str, str, str | None, str]  # (connector, entity, relation, arguments)


class Loaders(dict[LoaderKey, "BatchLoader[str, object]"]):
    """A request's loaders by key; ``closed`` once its response is built (RequestContext.close)."""

    closed: bool = False


def _record_plans() -> RecordPlans:
    from resolvers.records import RecordPlans  # a cycle at import time: resolvers.records -> resolvers -> here

    return RecordPlans()


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a request needs that lives as long as the gateway process."""

    connectors: Mapping[str, Connector]
    engine: PolicyEngine
    audit: AuditTrail
    catalog: FieldCatalog
    types: Mapping[str, type]  # GraphQL type name -> strawberry class records become
    keys: Mapping[str, str]  # GraphQL type name -> key field (Python name)
    owners: Mapping[str, str]  # shared entity -> the connector that materialises it
    record_types: Mapping[str, str]  # entity -> GraphQL type of its records, where they differ
    timeouts: Mapping[str, float]  # connector -> seconds
    max_page_size: int = 500
    #: Subgraph mode: shared entity -> a reference by key, for entities another subgraph owns.
    references: Mapping[str, Callable[[str], object]] = field(default_factory=dict)
    #: What decisions do to records, compiled once per decision (resolvers.records.RecordPlans).
    record_plans: RecordPlans = field(default_factory=_record_plans)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One request's identity, decisions, loaders and audit evidence."""

    runtime: Runtime
    principal: Principal
    purpose: Purpose
    request_id: str
    language: str = "en"
    decisions: dict[DecisionKey, Decision] = field(default_factory=dict)
    fields: dict[DecisionKey, frozenset[str]] = field(default_factory=dict)
    #: The fields (Python names) the operation selects on each type, under any connector's decision.
    selected: dict[str, frozenset[str]] = field(default_factory=dict)
    loaders: Loaders = field(default_factory=Loaders)
    returned: dict[str, list[str]] = field(default_factory=dict)
    plans: dict[str, RecordPlan] = field(default_factory=dict)

    def decision(self, connector: str, type_name: str) -> Decision:
        """The decision for (connector, type); a missing one is a deny (fail closed)."""
        found = self.decisions.get((connector, type_name))
        if found is None:
            return Decision.deny(f"no decision for {connector}/{type_name}")
        return found

    def close(self) -> None:
        """Drop the request's loaders once its response is built.

        A loader's batch function refers back to this context, so context, loaders, their kept
        values and every record they hold form a cycle that only the cyclic garbage collector
        frees, in pauses of milliseconds on large responses. Dropping the loaders breaks it: the
        request's objects are freed by reference counting when the response is sent. Work that
        outlives the response (graphql-core settles failed siblings' work in the background) still
        gets loaders, which are no longer kept.
        """
        self.loaders.clear()
        self.loaders.closed = True


__all__ = ["DecisionKey", "LoaderKey", "Loaders", "RequestContext", "Runtime"]
