"""The license store's part of the graph: registration data on ``Enterprise``, ``Person``,
``License`` and licence verification.

Scalar fields are plain attributes filled from records; root and link fields go through the
``resolvers`` loaders. ``ref`` fields are private (not in the schema): the unmasked key a link
resolver needs after masking has hidden the public one.
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
    load_entity,
    load_many,
    load_one,
    load_related,
    load_related_many,
    request_context,
    search_page,
)
from schema.directives import PICategory, classified, resolved
from schema.scalars import USCC, Adcode

if TYPE_CHECKING:
    from schema.entities import Enterprise, Person

CONNECTOR = "license"
EnterpriseRef = Annotated["Enterprise", strawberry.lazy("schema.entities")]
PersonRef = Annotated["Person", strawberry.lazy("schema.entities")]


@strawberry.enum(description="登记状态 (registration status): EXISTING 存续, REVOKED 吊销, CANCELLED 注销")
class EnterpriseStatus(StrEnum):
    EXISTING = "EXISTING"
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"


@strawberry.enum(
    description=(
        "证照类型 (licence type): BUSINESS_LICENSE 营业执照, FOOD_BUSINESS 食品经营许可证, CONSTRUCTION "
        "建筑工程施工许可证, ROAD_TRANSPORT 道路运输经营许可证, RESIDENT_ID 居民身份证, DRIVING_LICENSE 机动车驾驶证"
    )
)
class LicenseType(StrEnum):
    BUSINESS_LICENSE = "BUSINESS_LICENSE"
    FOOD_BUSINESS = "FOOD_BUSINESS"
    CONSTRUCTION = "CONSTRUCTION"
    ROAD_TRANSPORT = "ROAD_TRANSPORT"
    RESIDENT_ID = "RESIDENT_ID"
    DRIVING_LICENSE = "DRIVING_LICENSE"


@strawberry.enum(description="证照状态 (licence status): VALID 有效, EXPIRED 过期, REVOKED 撤销, SUSPENDED 暂扣")
class LicenseStatus(StrEnum):
    VALID = "VALID"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"


@strawberry.enum(
    description=(
        "核验结论 (verification verdict): VALID 有效, NOT_FOUND 无此证照, UNKNOWN_ISSUER 发证机关未知, "
        "BAD_SIGNATURE 签名无效, TAMPERED 内容被篡改, EXPIRED 已过期, REVOKED 已撤销, SUSPENDED 已暂扣, "
        "NOT_YET_VALID 尚未生效"
    )
)
class Verdict(StrEnum):
    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    TAMPERED = "TAMPERED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    NOT_YET_VALID = "NOT_YET_VALID"


@strawberry.type(description="电子证照 (an electronic licence)")
class License:
    number: str | None = classified(2, "证照编号 (licence number)")
    type: LicenseType = classified(1, "证照类型 (licence type)")
    issuer: str = classified(1, "发证机关 (issuing authority)")
    issued_on: dt.date = classified(1, "发证日期 (issue date)")
    valid_from: dt.date = classified(1, "有效期起 (valid from)")
    valid_until: dt.date | None = classified(1, "有效期至，空为长期 (valid until; null = long-term)")
    status: LicenseStatus = classified(1, "证照状态 (status)")
    scope: str | None = classified(2, "许可范围 (scope: business scope, food categories, vehicle class)")
    district_code: Adcode = classified(1, "行政区划代码 (district adcode)")
    holder_uscc: strawberry.Private[str | None]

    @resolved(1, "持证企业 (the holding enterprise, if an enterprise holds it)", resource="Enterprise")
    async def enterprise(self, info: Info) -> EnterpriseRef | None:
        if self.holder_uscc is None:
            return None
        return await load_entity(context_of(info), "Enterprise", self.holder_uscc, "License.enterprise")


@strawberry.type(description="证照核验结果 (result of verifying a licence); never includes the holder")
class LicenseVerification:
    valid: bool = classified(1, "是否有效 (valid)")
    verdict: Verdict = classified(1, "核验结论 (verdict)")
    reason: str = classified(1, "说明 (explanation)")
    checked_at: dt.datetime = classified(1, "核验时间 (checked at, RFC 3339)")
    number: str = classified(1, "证照编号 (licence number as presented)")
    type: LicenseType | None = classified(1, "证照类型 (licence type)")
    issuer: str | None = classified(1, "发证机关 (issuing authority)")
    issued_on: dt.date | None = classified(1, "发证日期 (issue date)")
    valid_from: dt.date | None = classified(1, "有效期起 (valid from)")
    valid_until: dt.date | None = classified(1, "有效期至 (valid until)")
    status: LicenseStatus | None = classified(1, "登记状态 (registry status)")


@strawberry.type
class LicensePersonFields:
    """``Person``: natural persons of the license store (L3 personal information, PIPL art. 28)."""

    id_number: str | None = classified(3, "公民身份号码 (resident ID number)", pi=PICategory.IDENTITY)
    name: str | None = classified(3, "姓名 (name)", pi=PICategory.NAME)
    phone: str | None = classified(3, "联系电话 (phone)", pi=PICategory.CONTACT)
    address: str | None = classified(3, "住址 (address)", pi=PICategory.ADDRESS)
    district_code: Adcode | None = classified(2, "户籍所在区 (district of residence)")
    ref: strawberry.Private[str]

    @resolved(1, "持有的证照 (licences held)", resource="License")
    async def licenses(
        self, info: Info, type: LicenseType | None = None, status: LicenseStatus | None = None
    ) -> list[License]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "License", "Person.licenses")
        args: dict[str, JSON] = {k: v for k, v in (("type", type), ("status", status)) if v is not None}
        return cast(list[License], await load_related(ctx, CONNECTOR, "License", "holder_id_number", self.ref, args))


def _legal_representatives(context: object, parents: Sequence[Any]) -> Awaitable[list[object]]:
    """``Enterprise.legalRepresentative`` of many enterprises (its batch resolver)."""
    ctx = request_context(context)
    check_coordinate(ctx, CONNECTOR, "Person", "Enterprise.legalRepresentative")
    return load_many(ctx, CONNECTOR, "Person", [p.legal_rep_ref for p in parents])


def _licences_held(
    context: object, parents: Sequence[Any], type: LicenseType | None = None, status: LicenseStatus | None = None
) -> Awaitable[list[object]]:
    """``Enterprise.licenses`` of many enterprises (its batch resolver, called without filters)."""
    ctx = request_context(context)
    check_coordinate(ctx, CONNECTOR, "License", "Enterprise.licenses")
    args: dict[str, JSON] = {k: v for k, v in (("type", type), ("status", status)) if v is not None}
    return load_related_many(ctx, CONNECTOR, "License", "holder_uscc", [p.uscc for p in parents], args)


@strawberry.type
class LicenseEnterpriseFields:
    """Registration data (营业执照) the license store contributes to ``Enterprise``."""

    uscc: USCC = classified(1, "统一社会信用代码 (Unified Social Credit Code)")
    name: str = classified(1, "企业名称 (enterprise name)")
    address: str = classified(1, "住所 (registered address)")
    district_code: Adcode = classified(1, "行政区划代码 (district adcode)")
    industry_code: str = classified(1, "行业代码 GB/T 4754 (industry code)")
    industry: str = classified(1, "行业 (industry)")
    registered_capital: Decimal | None = classified(1, "注册资本（元）(registered capital, yuan)")
    established_on: dt.date = classified(1, "成立日期 (date of establishment)")
    status: EnterpriseStatus = classified(1, "登记状态 (registration status)")
    phone: str | None = classified(2, "联系电话 (contact phone)")
    legal_rep_ref: strawberry.Private[str]

    @resolved(1, "法定代表人 (legal representative)", resource="Person", batch=_legal_representatives)
    async def legal_representative(self, info: Info) -> PersonRef | None:
        return cast("Person | None", first(await _legal_representatives(info.context, [self])))

    @resolved(1, "企业持有的证照 (licences held)", resource="License", batch=_licences_held)
    async def licenses(
        self, info: Info, type: LicenseType | None = None, status: LicenseStatus | None = None
    ) -> list[License]:
        return cast(list[License], first(await _licences_held(info.context, [self], type, status)))


@strawberry.input(description="企业筛选 (enterprise filter); all criteria must hold")
class EnterpriseFilter:
    district: Adcode | None = None
    status: EnterpriseStatus | None = None
    industry_code: str | None = strawberry.field(
        default=None, description="行业代码前缀 (industry code prefix, e.g. C34)"
    )
    name: str | None = strawberry.field(default=None, description="企业名称包含 (name contains, at least 2 characters)")


@strawberry.type
class LicenseQuery:
    @resolved(1, "企业列表 (enterprises, by USCC, Relay cursor pagination)", resource="Enterprise")
    async def enterprises(
        self, info: Info, filter: EnterpriseFilter | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[EnterpriseRef]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "Enterprise", "Query.enterprises")
        where: dict[str, JSON] = {}
        if filter is not None:
            where = {
                k: v
                for k, v in (
                    ("district", filter.district),
                    ("status", filter.status.value if filter.status else None),
                    ("industry_code", filter.industry_code),
                    ("name", filter.name),
                )
                if v is not None
            }
        size = check_first(first, ctx.runtime.max_page_size)
        objects, page = await search_page(ctx, CONNECTOR, "Enterprise", where=where, first=size, after=after)
        return connection(objects, page)

    @resolved(1, "按编号查询证照 (a licence by number)", resource="License")
    async def license(self, info: Info, number: str) -> License | None:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "License", "Query.license")
        return cast(License | None, await load_one(ctx, CONNECTOR, "License", number))

    @resolved(1, "按编号核验证照 (verify a licence by number)", resource="LicenseVerification")
    async def verify_license(self, info: Info, number: str) -> LicenseVerification:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "LicenseVerification", "Query.verifyLicense")
        result = await load_one(ctx, CONNECTOR, "LicenseVerification", number)
        return cast(LicenseVerification, result)

    @resolved(
        1, "核验出示的签名证照文件 (verify a presented signed licence document, JSON)", resource="LicenseDocument"
    )
    async def verify_license_document(self, info: Info, document: str) -> LicenseVerification:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "LicenseDocument", "Query.verifyLicenseDocument")
        result = await load_one(ctx, CONNECTOR, "LicenseDocument", document)
        return cast(LicenseVerification, result)


__all__ = [
    "EnterpriseFilter",
    "EnterpriseStatus",
    "License",
    "LicenseEnterpriseFields",
    "LicensePersonFields",
    "LicenseQuery",
    "LicenseStatus",
    "LicenseType",
    "LicenseVerification",
    "Verdict",
]
