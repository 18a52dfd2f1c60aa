"""The public credit platform's tables (SQLAlchemy Core; SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
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

metadata = MetaData()

#: Enterprises known to the credit platform (its "credit subjects").
credit_subjects = Table(
    "credit_subjects",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("district_code", String(6), nullable=False, index=True),
)

#: One credit profile per enterprise: the platform's public rating and its internal score.
credit_profiles = Table(
    "credit_profiles",
    metadata,
    Column("uscc", String(18), ForeignKey("credit_subjects.uscc"), primary_key=True),
    Column("rating", String(1), nullable=False),  # A (守信) .. D (失信)
    Column("score", Integer, nullable=False),  # 0..1000
    Column("assessed_at", DateTime(timezone=True), nullable=False),
)

#: Red list honours, black lists, abnormal operation, administrative penalties and licences.
credit_records = Table(
    "credit_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uscc", String(18), ForeignKey("credit_subjects.uscc"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", String(200), nullable=False, info={REPEATING: True}),
    Column("content", Text, nullable=False),
    Column("authority", String(100), nullable=False, info={REPEATING: True}),
    Column("decision_number", String(64), nullable=False),
    Column("decision_date", Date, nullable=False),
    Column("publicity_start", Date, nullable=False),
    Column("publicity_end", Date, nullable=False),
    Column("district_code", String(6), nullable=False),
    Column("amount", Numeric(14, 2), nullable=True),  # yuan; penalties only
    Column("legal_rep_name", String(50), nullable=False),
    Column("legal_rep_id_number", String(18), nullable=False),
    Column("internal_note", Text, nullable=True),
    # Every listing is newest first, (decision_date, id) descending: each index ends with that order
    # so a page is an index range scan, not a sort of the table.
    Index("ix_credit_records_date", "decision_date", "id"),
    Index("ix_credit_records_uscc", "uscc", "decision_date", "id"),
    Index("ix_credit_records_district", "district_code", "decision_date", "id"),
    Index("ix_credit_records_kind_date", "kind", "decision_date", "id"),
    Index("ix_credit_records_publicity", "publicity_end", "publicity_start"),
)

#: Record kinds as stored; the schema exposes them as the ``CreditRecordKind`` enum.
RECORD_KINDS = (
    "RED_LIST",
    "BLACK_LIST",
    "ABNORMAL_OPERATION",
    "ADMINISTRATIVE_PENALTY",
    "ADMINISTRATIVE_LICENSE",
)

__all__ = ["RECORD_KINDS", "credit_profiles", "credit_records", "credit_subjects", "metadata"]
