"""Order facts table (the walking skeleton's: OrderPlaced only), outbox and inbox.

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
        "order_facts",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pizzas", sa.Integer, nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_index("ix_order_facts_customer_id", "order_facts", ["customer_id"])
    op.create_index("ix_order_facts_placed_at", "order_facts", ["placed_at"])


def downgrade() -> None:
    op.drop_table("order_facts")
    drop_eventing_tables()
