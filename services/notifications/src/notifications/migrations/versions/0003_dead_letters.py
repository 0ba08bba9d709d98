"""Dead-letter records: each record the consumer dead-letters, per handler, so that a record
redelivered after a crash is dead-lettered once, and one the broker refuses is kept here.

Revision ID: 0003
"""

from eventing.migrations import create_dead_letters_table, drop_dead_letters_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_dead_letters_table()


def downgrade() -> None:
    drop_dead_letters_table()
