"""The credit platform's part of the graph: types, root fields and the ``Enterprise.credit`` link.

Scalar fields are plain attributes filled from records (so lists complete on the fast path);
only root and link fields have resolvers, and those go through ``resolvers`` loaders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.types import Info

from connectors.base import JSON
from resolvers import (
    Connection,
    check_coordinate,
    check_first,
    connection,
    context_of,
    first,
    load_entities,
    load_many,
    load_related_many,
    request_context,
    search_page,
)
from schema.directives import PICategory, classified, resolved
from schema.scalars import USCC, Adcode

if TYPE_CHECKING:
    from schema.entities import Enterprise

CONNECTOR = "credit"
EnterpriseRef = Annotated["Enterprise", strawberry.lazy("schema.entities")]


@strawberry.enum(
    description=(
        "信用记录类别 (kind of credit record): RED_LIST 红名单 (honours), BLACK_LIST 黑名单 (dishonesty list), "
        "ABNORMAL_OPERATION 经营异常名录 (abnormal operation), ADMINISTRATIVE_PENALTY 行政处罚 (penalty), "
        "ADMINISTRATIVE_LICENSE 行政许可 (licence)"
    )
)
class CreditRecordKind(StrEnum):
    # A str enum so the stored text compares equal to the member and serialises without mapping.
    RED_LIST = "RED_LIST"
    BLACK_LIST = "BLACK_LIST"
    ABNORMAL_OPERATION = "ABNORMAL_OPERATION"
    ADMINISTRATIVE_PENALTY = "ADMINISTRATIVE_PENALTY"
    ADMINISTRATIVE_LICENSE = "ADMINISTRATIVE_LICENSE"


def _enterprises(context: object, parents: Sequence[Any]) -> Awaitable[list[object]]:
    """``CreditRecord.enterprise`` of many records (its batch resolver)."""
    keys = [p.uscc for p in parents]
    return load_entities(request_context(context), "Enterprise", keys, "CreditRecord.enterprise")


def _profiles(context: object, parents: Sequence[Any]) -> Awaitable[list[object]]:
    """``Enterprise.credit`` of many enterprises (its batch resolver)."""
    ctx = request_context(context)
    check_coordinate(ctx, CONNECTOR, "CreditProfile", "Enterprise.credit")
    return load_many(ctx, CONNECTOR, "CreditProfile", [p.uscc for p in parents])


def _records(
    context: object, parents: Sequence[Any], kinds: list[CreditRecordKind] | None = None
) -> Awaitable[list[object]]:
    """``CreditProfile.records`` of many profiles (its batch resolver, called without ``kinds``)."""
    ctx = request_context(context)
    check_coordinate(ctx, CONNECTOR, "CreditRecord", "CreditProfile.records")
    args: dict[str, JSON] = {"kinds": sorted(k.value for k in kinds)} if kinds else {}
    return load_related_many(ctx, CONNECTOR, "CreditRecord", "uscc", [p.uscc for p in parents], args)


@strawberry.type(description="信用记录 (a credit record of the public credit platform)")
class CreditRecord:
    id: strawberry.ID = classified(1, "记录编号 (record id)")
    uscc: USCC = classified(1, "统一社会信用代码 (USCC of the enterprise)")
    kind: CreditRecordKind = classified(1, "类别 (kind)")
    title: str = classified(1, "事由 (title)")
    content: str = classified(1, "内容摘要 (summary)")
    authority: str = classified(1, "认定机关 (deciding authority)")
    decision_date: dt.date = classified(1, "决定日期 (decision date)")
    publicity_ends_on: dt.date = classified(1, "公示截止日期 (end of the publicity period)")
    district_code: Adcode = classified(1, "行政区划代码 (district adcode)")
    decision_number: str | None = classified(2, "决定文书号 (decision document number)")
    amount: Decimal | None = classified(2, "罚没金额（元）(penalty amount, yuan)")
    legal_rep_name: str | None = classified(3, "法定代表人姓名 (legal representative's name)", pi=PICategory.NAME)
    legal_rep_id_number: str | None = classified(
        3, "法定代表人身份证号 (legal representative's ID number)", pi=PICategory.IDENTITY
    )
    internal_note: str | None = classified(4, "内部备注 (internal note)")

    @resolved(1, "所属企业 (the enterprise)", resource="Enterprise", batch=_enterprises)
    async def enterprise(self, info: Info) -> EnterpriseRef | None:
        return first(await _enterprises(info.context, [self]))


@strawberry.type(description="信用档案 (credit profile)")
class CreditProfile:
    uscc: USCC = classified(1, "统一社会信用代码 (USCC)")
    rating: str = classified(1, "信用等级 A-D (public credit rating)")
    score: int | None = classified(2, "信用评分 0-1000 (internal credit score)")
    assessed_at: dt.datetime | None = classified(2, "评定时间 (assessed at, RFC 3339)")

    @resolved(1, "信用记录 (the enterprise's credit records)", resource="CreditRecord", batch=_records)
    async def records(self, info: Info, kinds: list[CreditRecordKind] | None = None) -> list[CreditRecord]:
        return cast(list[CreditRecord], first(await _records(info.context, [self], kinds)))


@strawberry.type
class CreditEnterpriseFields:
    """Fields the credit platform contributes to ``Enterprise``."""

    uscc: USCC = classified(1, "统一社会信用代码 (Unified Social Credit Code)")
    name: str = classified(1, "企业名称 (enterprise name)")
    district_code: Adcode = classified(1, "行政区划代码 (district adcode)")

    @resolved(1, "信用档案 (credit profile on the public credit platform)", resource="CreditProfile", batch=_profiles)
    async def credit(self, info: Info) -> CreditProfile | None:
        return cast(CreditProfile | None, first(await _profiles(info.context, [self])))


@strawberry.input(description="信用记录筛选 (credit record filter)")
class CreditRecordFilter:
    kinds: list[CreditRecordKind] | None = None
    district: Adcode | None = None
    uscc: USCC | None = None
    authority: str | None = strawberry.field(default=None, description="认定机关，精确匹配 (exact authority name)")
    decided_from: dt.date | None = None
    decided_to: dt.date | None = None


@strawberry.type
class CreditQuery:
    @resolved(1, "信用记录列表 (credit records, newest first, Relay cursor pagination)", resource="CreditRecord")
    async def credit_records(
        self,
        info: Info,
        filter: CreditRecordFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[CreditRecord]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "CreditRecord", "Query.creditRecords")
        size = check_first(first, ctx.runtime.max_page_size)
        where: dict[str, JSON] = {}
        if filter is not None:
            where = {
                "kinds": [k.value for k in filter.kinds] if filter.kinds else None,
                "district": filter.district,
                "uscc": filter.uscc,
                "authority": filter.authority,
                "decided_from": filter.decided_from.isoformat() if filter.decided_from else None,
                "decided_to": filter.decided_to.isoformat() if filter.decided_to else None,
            }
        objects, page = await search_page(
            ctx,
            CONNECTOR,
            "CreditRecord",
            where={k: v for k, v in where.items() if v is not None},
            first=size,
            after=after,
        )
        return connection(cast(list[CreditRecord], objects), page)


__all__ = [
    "CreditEnterpriseFields",
    "CreditProfile",
    "CreditQuery",
    "CreditRecord",
    "CreditRecordFilter",
    "CreditRecordKind",
]
