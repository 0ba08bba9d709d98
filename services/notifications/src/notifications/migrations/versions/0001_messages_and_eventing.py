"""Messages table, outbox and inbox.

Revision ID: 0001
"""

from alembic import op

from eventing.migrations import create_eventing_tables, drop_eventing_tables
from notifications.adapters.orm import messages_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_eventing_tables(op.get_bind())
    messages_table.create(op.get_bind())


def downgrade() -> None:
    messages_table.drop(op.get_bind())
    drop_eventing_tables(op.get_bind())
