"""Root lookups of shared entities by key, answered by whichever enabled connector owns them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from resolvers import context_of, load_entity
from schema.directives import resolved
from schema.scalars import USCC

if TYPE_CHECKING:
    from schema.entities import Enterprise

EnterpriseRef = Annotated["Enterprise", strawberry.lazy("schema.entities")]


@strawberry.type
class EnterpriseQuery:
    """``Query.enterprise``, answered by whichever enabled connector owns ``Enterprise``."""

    @resolved(1, "按统一社会信用代码查询企业 (an enterprise by USCC)", resource="Enterprise")
    async def enterprise(self, info: Info, uscc: USCC) -> EnterpriseRef | None:
        return await load_entity(context_of(info), "Enterprise", uscc, "Query.enterprise")


#: Root lookups by key, per shared entity.
ENTITY_QUERIES: dict[str, type] = {"Enterprise": EnterpriseQuery}

__all__ = ["ENTITY_QUERIES", "EnterpriseQuery"]
