"""Entity types shared across connectors, composed by ``schema.builder`` from their fields.

Connectors contribute fields to an entity (``SchemaContribution.entity_fields``); the builder
composes each entity class and stores it here so that ``strawberry.lazy("schema.entities")``
references resolve to it when the schema is converted.
"""

from __future__ import annotations

from typing import Any

#: GraphQL descriptions of the shared entities (Chinese term, then English).
DESCRIPTIONS = {
    "Enterprise": "企业 (enterprise), keyed by 统一社会信用代码 (Unified Social Credit Code)",
    "Person": "自然人 (natural person), keyed by 公民身份号码 (resident ID number)",
    "District": "行政区 (administrative district), keyed by 行政区划代码 (adcode)",
}

Enterprise: Any = None
Person: Any = None
District: Any = None


__all__ = ["DESCRIPTIONS", "District", "Enterprise", "Person"]
