"""Messages table, outbox and inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from eventing.migrations import create_eventing_tables, drop_eventing_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_eventing_tables()
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("event_id", "channel", name="messages_once_per_event_and_channel"),
    )
    op.create_index("ix_messages_order_id", "messages", ["order_id"])
    op.create_index("ix_messages_customer_id", "messages", ["customer_id"])


def downgrade() -> None:
    op.drop_table("messages")
    drop_eventing_tables()
