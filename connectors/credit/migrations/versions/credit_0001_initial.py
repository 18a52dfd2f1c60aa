"""The credit platform's tables and the indexes its policy filters and listings use.

Revision ID: credit_0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "credit_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_subjects",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.PrimaryKeyConstraint("uscc"),
    )
    op.create_index("ix_credit_subjects_district_code", "credit_subjects", ["district_code"])
    op.create_table(
        "credit_profiles",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("rating", sa.String(length=1), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["uscc"], ["credit_subjects.uscc"]),
        sa.PrimaryKeyConstraint("uscc"),
    )
    op.create_table(
        "credit_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("authority", sa.String(length=100), nullable=False),
        sa.Column("decision_number", sa.String(length=64), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("publicity_start", sa.Date(), nullable=False),
        sa.Column("publicity_end", sa.Date(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("legal_rep_name", sa.String(length=50), nullable=False),
        sa.Column("legal_rep_id_number", sa.String(length=18), nullable=False),
        sa.Column("internal_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["uscc"], ["credit_subjects.uscc"]),
        sa.PrimaryKeyConstraint("id"),
    )
    # As in connectors/credit/tables.py: each listing index ends with (decision_date, id).
    op.create_index("ix_credit_records_date", "credit_records", ["decision_date", "id"])
    op.create_index("ix_credit_records_uscc", "credit_records", ["uscc", "decision_date", "id"])
    op.create_index("ix_credit_records_district", "credit_records", ["district_code", "decision_date", "id"])
    op.create_index("ix_credit_records_kind_date", "credit_records", ["kind", "decision_date", "id"])
    op.create_index("ix_credit_records_publicity", "credit_records", ["publicity_end", "publicity_start"])


def downgrade() -> None:
    op.drop_table("credit_records")
    op.drop_table("credit_profiles")
    op.drop_table("credit_subjects")
