"""The e-license store's tables (电子证照库; SQLAlchemy Core, SQLite by default, any SQLAlchemy URL).

Who holds what: :data:`enterprises` (each with its legal representative in :data:`persons`) and
:data:`persons` hold :data:`licenses`; every licence is signed by one of the :data:`issuers`
(SM2 over SM3, see :mod:`connectors.license.signing`). ``licenses.signature`` covers the fields
listed in :data:`connectors.license.signing.SIGNED_FIELDS`, not ``status``: revocation and
suspension happen after issuance and are checked against this registry.

Demo databases also hold a ``demo_cases`` table (:mod:`connectors.license.demo`); it is not part
of this schema and never exists in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

from connectors.prepared import REPEATING

#: Licence types as stored; the schema exposes them as an enum.
LICENSE_TYPES = (
    "BUSINESS_LICENSE",  # 营业执照
    "FOOD_BUSINESS",  # 食品经营许可证
    "CONSTRUCTION",  # 建筑工程施工许可证
    "ROAD_TRANSPORT",  # 道路运输经营许可证
    "RESIDENT_ID",  # 居民身份证
    "DRIVING_LICENSE",  # 机动车驾驶证
)
#: Registry status of a licence: 有效, 过期, 撤销/吊销, 暂停/暂扣.
LICENSE_STATUSES = ("VALID", "EXPIRED", "REVOKED", "SUSPENDED")
#: Registration status of an enterprise: 存续, 吊销, 注销.
ENTERPRISE_STATUSES = ("EXISTING", "REVOKED", "CANCELLED")
#: Who holds a licence: an enterprise (``holder_uscc``) or a person (``holder_id_number``).
HOLDER_KINDS = ("ENTERPRISE", "PERSON")
#: The holder kind each licence type is issued to.
HOLDER_KIND_BY_TYPE: Mapping[str, str] = MappingProxyType(
    {
        "BUSINESS_LICENSE": "ENTERPRISE",
        "FOOD_BUSINESS": "ENTERPRISE",
        "CONSTRUCTION": "ENTERPRISE",
        "ROAD_TRANSPORT": "ENTERPRISE",
        "RESIDENT_ID": "PERSON",
        "DRIVING_LICENSE": "PERSON",
    }
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = MetaData()

#: Natural persons known to the store: licence holders and legal representatives.
persons = Table(
    "persons",
    metadata,
    Column("id_number", String(18), primary_key=True),
    Column("name", String(50), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("phone", String(11), nullable=False),
    Column("address", Text, nullable=False),
    Column("district_code", String(6), nullable=False, index=True),
)

#: Registered market entities (the same USCCs as the credit platform's subjects).
enterprises = Table(
    "enterprises",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("name", String(200), nullable=False, index=True),
    Column(
        "legal_rep_id_number",
        String(18),
        ForeignKey("persons.id_number"),
        nullable=False,
        index=True,
    ),
    Column("address", Text, nullable=False),
    Column("district_code", String(6), nullable=False),
    Column("industry_code", String(5), nullable=False),  # GB/T 4754-2017 class, e.g. "C3481"
    Column("industry_name", String(100), nullable=False, info={REPEATING: True}),
    Column("registered_capital", Numeric(16, 2), nullable=False),  # yuan
    Column("established_on", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("phone", String(20), nullable=False),
    CheckConstraint(_one_of("status", ENTERPRISE_STATUSES), name="ck_enterprises_status"),
    # Listings page by USCC: each filterable column is indexed together with that order.
    Index("ix_enterprises_district", "district_code", "uscc"),
    Index("ix_enterprises_status", "status", "uscc"),
    Index("ix_enterprises_industry", "industry_code", "uscc"),
)

#: Issuing authorities and their SM2 public keys.
issuers = Table(
    "issuers",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("algorithm", String(16), nullable=False),  # "SM2-SM3"
    # Hex of the uncompressed point 04 || x || y (130 characters).
    Column("public_key", Text, nullable=False),
    # False for retired keys / abolished authorities: their signatures no longer verify as VALID.
    Column("active", Boolean, nullable=False),
)

#: Electronic licences, one row per licence number.
licenses = Table(
    "licenses",
    metadata,
    Column("number", String(64), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("holder_kind", String(16), nullable=False),
    Column("holder_uscc", String(18), ForeignKey("enterprises.uscc"), nullable=True, index=True),
    Column("holder_id_number", String(18), ForeignKey("persons.id_number"), nullable=True, index=True),
    Column("issuer_code", String(32), ForeignKey("issuers.code"), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=True),  # NULL: long-term (长期)
    Column("status", String(16), nullable=False),
    # Business scope (经营范围), permitted food categories, project, vehicle class ("C1") ...
    Column("scope", Text, nullable=False),
    Column("district_code", String(6), nullable=False, index=True),
    Column("signature", Text, nullable=False),  # hex r || s, SM2 with SM3 over the canonical form
    Column("sign_version", Integer, nullable=False, default=1),
    CheckConstraint(_one_of("type", LICENSE_TYPES), name="ck_licenses_type"),
    CheckConstraint(_one_of("status", LICENSE_STATUSES), name="ck_licenses_status"),
    CheckConstraint(
        "(holder_kind = 'ENTERPRISE' AND holder_uscc IS NOT NULL AND holder_id_number IS NULL)"
        " OR (holder_kind = 'PERSON' AND holder_id_number IS NOT NULL AND holder_uscc IS NULL)",
        name="ck_licenses_holder",
    ),
)

__all__ = [
    "ENTERPRISE_STATUSES",
    "enterprises",
    "HOLDER_KIND_BY_TYPE",
    "HOLDER_KINDS",
    "issuers",
    "LICENSE_STATUSES",
    "LICENSE_TYPES",
    "licenses",
    "metadata",
    "persons",
]
