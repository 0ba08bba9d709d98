"""Order lifecycle columns, idempotency keys, customers, menu and inbound events.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from orders.domain.menu import SEED_MENU

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "orders", sa.Column("fulfilment", sa.Text, nullable=False, server_default="delivery")
    )
    op.add_column("orders", sa.Column("cancel_reason", sa.Text))
    op.add_column("orders", sa.Column("driver_id", sa.Text))
    op.add_column("orders", sa.Column("tracking_token_sha256", sa.Text))
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_sha256", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("sms_opt_in", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("email_opt_in", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "customers_phone",
        "customers",
        ["phone"],
        unique=True,
        postgresql_where=sa.text("phone IS NOT NULL"),
    )
    op.create_index(
        "customers_email",
        "customers",
        ["email"],
        unique=True,
        postgresql_where=sa.text("email IS NOT NULL"),
    )
    menu = op.create_table(
        "menu",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("base_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("toppings", JSONB, nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    # The seed menu is the starting state; every later change is a menu event.
    op.bulk_insert(
        menu,
        [
            {
                "name": pizza.name,
                "base_price": pizza.base_price,
                "toppings": list(pizza.toppings),
                "version": 1,
            }
            for pizza in SEED_MENU
        ],
    )
    op.create_table(
        "inbound_events",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("data", JSONB, nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("outcome", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inbound_events")
    op.drop_table("menu")
    op.drop_table("customers")
    op.drop_table("idempotency_keys")
    for column in ("tracking_token_sha256", "driver_id", "cancel_reason", "fulfilment"):
        op.drop_column("orders", column)
