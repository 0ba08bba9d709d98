"""Guest contact snapshots and sign-in codes.

A customer is now someone who proved, with a one-time code, that they receive the messages of a
phone number or an email address; an order placed without signing in carries a contact snapshot
of its own (``guest``), which no phone or email lookup finds. So the unique indexes on phone and
email cover customers only.

Every row from before this revision becomes a guest snapshot. Those rows were made and changed
by anonymous orders that matched on phone or email, so nothing says the details on one of them
belong to one person (anyone could overwrite them); handing their orders to whoever signs in
with that phone or email would hand them, possibly, to someone else. Their orders, their
notifications and erasure per id carry on as before; signing in starts a new customer.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "customers", sa.Column("guest", sa.Boolean, nullable=False, server_default=sa.true())
    )
    # Rows from now on are customers unless they say otherwise.
    op.alter_column("customers", "guest", server_default=sa.false())
    for column in ("phone", "email"):
        op.drop_index(f"customers_{column}", table_name="customers")
        op.create_index(
            f"customers_{column}",
            "customers",
            [column],
            unique=True,
            postgresql_where=sa.text(f"{column} IS NOT NULL AND NOT guest"),
        )
    op.create_table(
        "sign_in_codes",
        sa.Column("contact_key", sa.Text, primary_key=True),
        sa.Column("code_digest", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_sign_in_codes_expires_at", "sign_in_codes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("sign_in_codes")
    for column in ("phone", "email"):
        op.drop_index(f"customers_{column}", table_name="customers")
    # Guests may share a phone or an email; the old indexes keep one row per value (the
    # customer's, else the earliest guest's), so the others' copy of it goes.
    for statement in (
        "UPDATE customers AS c SET phone = NULL WHERE c.guest AND c.phone IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM customers AS o WHERE o.phone = c.phone AND o.id <> c.id"
        " AND (NOT o.guest OR (o.created_at, o.id) < (c.created_at, c.id)))",
        "UPDATE customers AS c SET email = NULL WHERE c.guest AND c.email IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM customers AS o WHERE o.email = c.email AND o.id <> c.id"
        " AND (NOT o.guest OR (o.created_at, o.id) < (c.created_at, c.id)))",
    ):
        op.execute(statement)
    for column in ("phone", "email"):
        op.create_index(
            f"customers_{column}",
            "customers",
            [column],
            unique=True,
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )
    op.drop_column("customers", "guest")
