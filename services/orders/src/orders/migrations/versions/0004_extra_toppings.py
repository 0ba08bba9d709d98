"""The menu's extra toppings: what a customer may add to any pizza.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

from orders.domain.menu import SEED_EXTRA_TOPPINGS

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    toppings = op.create_table(
        "extra_toppings",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.bulk_insert(toppings, [{"name": name, "version": 1} for name in SEED_EXTRA_TOPPINGS])


def downgrade() -> None:
    op.drop_table("extra_toppings")
