"""Orders keep the SHA-256 of their tracking token (from OrderPlaced), so the holder of the token
may read the order's in-app messages.

Orders remembered before this revision have none: only their customer or a manager may read
their messages. The revision id is the file's name, so that it cannot collide with another
branch's 0003 while the migrations are merged.

Revision ID: 0003_order_tracking_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_order_tracking_tokens"
down_revision = "0003_erasure_marks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("tracking_token_sha256", sa.Text))


def downgrade() -> None:
    op.drop_column("orders", "tracking_token_sha256")
