"""Erasure marks: the customers a contacts tombstone erased, so they stay erased.

A contact record that arrives after the tombstone (a dead letter replayed, a late duplicate)
is ignored for a customer listed here. Erasures applied before this revision left no mark; the
orders database knows them (``customers.erased_at``).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("erased_customers")
