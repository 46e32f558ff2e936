"""Schema 2: the `monitoring` table (one row per scoring run that could judge a version).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(128)),
        sa.Column("data_sha256", sa.String(64)),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("failed", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_index("ix_monitoring_name_version", "monitoring", ["name", "version", "id"])
    op.execute("UPDATE registry_meta SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_table("monitoring")
    op.execute("UPDATE registry_meta SET value = '1' WHERE key = 'schema_version'")
