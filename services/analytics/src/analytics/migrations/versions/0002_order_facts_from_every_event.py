"""Order facts filled by every order and kitchen event, and order lines.

The walking skeleton's ``order_facts`` (OrderPlaced only) is replaced; its rows are rebuilt by
replaying the topics (``analytics rebuild``), so nothing is migrated.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("order_facts")
    ts = sa.DateTime(timezone=True)
    money = sa.Numeric(10, 2)
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text),
        sa.Column("fulfilment", sa.Text),
        sa.Column("placed_at", ts),
        sa.Column("total", money),
        sa.Column("pizzas", sa.Integer),
        sa.Column("confirmed_at", ts),
        sa.Column("confirmed_by", sa.Text),
        sa.Column("cancelled_at", ts),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("cancelled_from", sa.Text),
        sa.Column("cooking_started_at", ts),
        sa.Column("order_ready_at", ts),
        sa.Column("departed_at", ts),
        sa.Column("driver_id", sa.Text),
        sa.Column("delivered_at", ts),
        sa.Column("picked_up_at", ts),
        sa.Column("queued_at", ts),
        sa.Column("cook", sa.Text),
        sa.Column("kitchen_started_at", ts),
        sa.Column("kitchen_ready_at", ts),
        sa.Column("estimated_ready_at", ts),
        sa.Column("lateness_seconds", sa.Integer),
        sa.Column("on_time", sa.Boolean),
        sa.Column("withdrawn_at", ts),
        sa.Column("pizzas_wasted", sa.Integer),
    )
    op.create_index("ix_order_facts_placed_at", "order_facts", ["placed_at"])
    op.create_index("ix_order_facts_customer_id", "order_facts", ["customer_id"])
    op.create_table(
        "order_lines",
        sa.Column(
            "order_id",
            sa.Text,
            sa.ForeignKey("order_facts.order_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("pizza", sa.Text, nullable=False),
        sa.Column("size", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("toppings", ARRAY(sa.Text), nullable=False),
        sa.Column("unit_price", money, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("order_lines")
    op.drop_table("order_facts")
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False, index=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("pizzas", sa.Integer, nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
