"""Ticket lifecycle (cooking, ready, withdrawn, wasted), estimates, and the kitchen clock.

The walking skeleton queued a ticket when an order was *placed*. Tickets now come from the
order's confirmation, so those early rows are not kitchen work: they are deleted, and a
confirmation arriving later creates the real ticket.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM tickets")
    op.add_column(
        "tickets", sa.Column("fulfilment", sa.Text, nullable=False, server_default="delivery")
    )
    op.add_column("tickets", sa.Column("started_at", sa.DateTime(timezone=True)))
    op.add_column("tickets", sa.Column("ready_at", sa.DateTime(timezone=True)))
    op.add_column("tickets", sa.Column("cook", sa.Text))
    op.add_column("tickets", sa.Column("estimated_ready_at", sa.DateTime(timezone=True)))
    op.add_column("tickets", sa.Column("lateness_seconds", sa.Integer))
    op.add_column("tickets", sa.Column("cancelled_at", sa.DateTime(timezone=True)))
    op.add_column("tickets", sa.Column("cancel_reason", sa.Text))
    op.add_column(
        "tickets",
        sa.Column("pizzas_wasted", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "kitchen_clock",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("now", sa.DateTime(timezone=True)),
        sa.CheckConstraint("id = 1", name="kitchen_clock_one_row"),
    )
    op.execute("INSERT INTO kitchen_clock (id, now) VALUES (1, NULL)")


def downgrade() -> None:
    op.drop_table("kitchen_clock")
    for column in (
        "pizzas_wasted",
        "cancel_reason",
        "cancelled_at",
        "lateness_seconds",
        "estimated_ready_at",
        "cook",
        "ready_at",
        "started_at",
        "fulfilment",
    ):
        op.drop_column("tickets", column)
