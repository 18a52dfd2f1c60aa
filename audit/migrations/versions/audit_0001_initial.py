"""The hash-chained ``audit_log`` table.

Revision ID: audit_0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        # INTEGER PRIMARY KEY on SQLite aliases the rowid; BIGINT elsewhere. Never generated: the
        # trail assigns seq under its lock.
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("case_ref", sa.Text(), nullable=True),
        sa.Column("operation_name", sa.Text(), nullable=True),
        sa.Column("document_hash", sa.String(length=128), nullable=False),
        sa.Column("coordinates", sa.Text(), nullable=False),
        sa.Column("record_keys", sa.Text(), nullable=False),
        sa.Column("policy_revision", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("classification", sa.SmallInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=128), nullable=False),
        sa.Column("hash", sa.String(length=128), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
