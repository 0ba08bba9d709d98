"""Orders keep the SHA-256 of their tracking token (from OrderPlaced), so the holder of the token
may read the order's in-app messages.

Orders remembered before this revision have none: only their customer or a manager may read
their messages.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("tracking_token_sha256", sa.Text))


def downgrade() -> None:
    op.drop_column("orders", "tracking_token_sha256")
