"""Order facts table, outbox and inbox.

Revision ID: 0001
"""

from alembic import op

from analytics.adapters.orm import order_facts_table
from eventing.migrations import create_eventing_tables, drop_eventing_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_eventing_tables(op.get_bind())
    order_facts_table.create(op.get_bind())


def downgrade() -> None:
    order_facts_table.drop(op.get_bind())
    drop_eventing_tables(op.get_bind())
