"""Deliveries per (event, channel), contacts, orders, late timers; in-app read/dismiss.

The walking skeleton wrote in-app messages straight from its handler; those rows stay valid.
The DDL is frozen here (not taken from adapters/orm.py), so later model changes never alter
what this revision did.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if default else None,
    )


def upgrade() -> None:
    # 0001 used to create ``messages`` from the model of its day, so a database made at 0001
    # by that code may have these columns already.
    op.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS read_at timestamptz")
    op.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS dismissed_at timestamptz")
    op.create_table(
        "contacts",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("email_opt_in", sa.Boolean, nullable=False),
        sa.Column("sms_opt_in", sa.Boolean, nullable=False),
        _timestamp("updated_at", nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("fulfilment", sa.Text),
        _timestamp("estimated_ready_at"),
        _timestamp("updated_at", nullable=False, default=True),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        _timestamp("next_attempt_at", nullable=False, default=True),
        _timestamp("wait_until", nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text),
        sa.Column("provider_id", sa.Text),
        _timestamp("created_at", nullable=False, default=True),
        _timestamp("updated_at", nullable=False, default=True),
        _timestamp("sent_at"),
        sa.UniqueConstraint("event_id", "channel", name="deliveries_once_per_event_and_channel"),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'skipped')", name="deliveries_status"
        ),
    )
    op.create_index("ix_deliveries_order_id", "deliveries", ["order_id"])
    op.create_index("ix_deliveries_customer_id", "deliveries", ["customer_id"])
    op.create_index(
        "deliveries_due",
        "deliveries",
        ["channel", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "late_timers",
        sa.Column("order_id", sa.Text, primary_key=True),
        _timestamp("due_at", nullable=False),
        _timestamp("estimated_ready_at", nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        _timestamp("updated_at", nullable=False, default=True),
        sa.CheckConstraint("status IN ('armed', 'fired', 'cancelled')", name="late_timers_status"),
    )
    op.create_index(
        "late_timers_due", "late_timers", ["due_at"], postgresql_where=sa.text("status = 'armed'")
    )


def downgrade() -> None:
    op.drop_table("late_timers")
    op.drop_table("deliveries")
    op.drop_table("orders")
    op.drop_table("contacts")
    op.drop_column("messages", "dismissed_at")
    op.drop_column("messages", "read_at")
