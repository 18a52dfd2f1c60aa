"""Root lookups of shared entities by key, answered by whichever enabled connector owns them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from resolvers import context_of, load_entity
from schema.directives import resolved
from schema.scalars import USCC, IDNumber

if TYPE_CHECKING:
    from schema.entities import Enterprise, Person

EnterpriseRef = Annotated["Enterprise", strawberry.lazy("schema.entities")]
PersonRef = Annotated["Person", strawberry.lazy("schema.entities")]


@strawberry.type
class EnterpriseQuery:
    """``Query.enterprise``, answered by whichever enabled connector owns ``Enterprise``."""

    @resolved(1, "按统一社会信用代码查询企业 (an enterprise by USCC)", resource="Enterprise")
    async def enterprise(self, info: Info, uscc: USCC) -> EnterpriseRef | None:
        return await load_entity(context_of(info), "Enterprise", uscc, "Query.enterprise")


@strawberry.type
class PersonQuery:
    """``Query.person``, answered by whichever enabled connector owns ``Person``."""

    @resolved(1, "按公民身份号码查询自然人 (a person by resident ID number)", resource="Person")
    async def person(self, info: Info, id_number: IDNumber) -> PersonRef | None:
        return await load_entity(context_of(info), "Person", id_number, "Query.person")


#: Root lookups by key, per shared entity.
ENTITY_QUERIES: dict[str, type] = {"Enterprise": EnterpriseQuery, "Person": PersonQuery}

__all__ = ["ENTITY_QUERIES", "EnterpriseQuery", "PersonQuery"]
