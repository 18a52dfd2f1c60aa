"""The e-license store's tables and the indexes its policy filters and searches use.

Revision ID: license_0001
Revises:
Create Date: 2026-05-01

The CHECK constraints are spelled out (not built from ``connectors.license.tables``' constants):
a revision is a snapshot, and a new licence type or status is a new revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "license_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.PrimaryKeyConstraint("id_number"),
    )
    op.create_index("ix_persons_district_code", "persons", ["district_code"])
    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("legal_rep_id_number", sa.String(length=18), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("industry_code", sa.String(length=5), nullable=False),
        sa.Column("industry_name", sa.String(length=100), nullable=False),
        sa.Column("registered_capital", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("established_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.CheckConstraint("status IN ('EXISTING', 'REVOKED', 'CANCELLED')", name="ck_enterprises_status"),
        sa.ForeignKeyConstraint(["legal_rep_id_number"], ["persons.id_number"]),
        sa.PrimaryKeyConstraint("uscc"),
    )
    op.create_index("ix_enterprises_name", "enterprises", ["name"])
    op.create_index("ix_enterprises_legal_rep_id_number", "enterprises", ["legal_rep_id_number"])
    # As in connectors/license/tables.py: listings page by USCC, so each index ends with it.
    op.create_index("ix_enterprises_district", "enterprises", ["district_code", "uscc"])
    op.create_index("ix_enterprises_status", "enterprises", ["status", "uscc"])
    op.create_index("ix_enterprises_industry", "enterprises", ["industry_code", "uscc"])
    op.create_table(
        "issuers",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "licenses",
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("holder_kind", sa.String(length=16), nullable=False),
        sa.Column("holder_uscc", sa.String(length=18), nullable=True),
        sa.Column("holder_id_number", sa.String(length=18), nullable=True),
        sa.Column("issuer_code", sa.String(length=32), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("sign_version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "type IN ('BUSINESS_LICENSE', 'FOOD_BUSINESS', 'CONSTRUCTION', 'ROAD_TRANSPORT', 'RESIDENT_ID',"
            " 'DRIVING_LICENSE')",
            name="ck_licenses_type",
        ),
        sa.CheckConstraint("status IN ('VALID', 'EXPIRED', 'REVOKED', 'SUSPENDED')", name="ck_licenses_status"),
        sa.CheckConstraint(
            "(holder_kind = 'ENTERPRISE' AND holder_uscc IS NOT NULL AND holder_id_number IS NULL)"
            " OR (holder_kind = 'PERSON' AND holder_id_number IS NOT NULL AND holder_uscc IS NULL)",
            name="ck_licenses_holder",
        ),
        sa.ForeignKeyConstraint(["holder_uscc"], ["enterprises.uscc"]),
        sa.ForeignKeyConstraint(["holder_id_number"], ["persons.id_number"]),
        sa.ForeignKeyConstraint(["issuer_code"], ["issuers.code"]),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_index("ix_licenses_holder_uscc", "licenses", ["holder_uscc"])
    op.create_index("ix_licenses_holder_id_number", "licenses", ["holder_id_number"])
    op.create_index("ix_licenses_district_code", "licenses", ["district_code"])


def downgrade() -> None:
    op.drop_table("licenses")
    op.drop_table("issuers")
    op.drop_table("enterprises")
    op.drop_table("persons")
