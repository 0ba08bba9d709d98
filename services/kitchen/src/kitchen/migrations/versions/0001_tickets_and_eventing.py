"""Tickets table, outbox and inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from eventing.migrations import create_eventing_tables, drop_eventing_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_eventing_tables()
    op.create_table(
        "tickets",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("pizzas", sa.Integer, nullable=False),
        sa.Column("lines", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, index=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tickets")
    drop_eventing_tables()
