"""Tables of the orders database (the eventing tables come from ``eventing.database``)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

orders_table = Table(
    "orders",
    metadata,
    Column("id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("lines", JSONB, nullable=False),
    Column("total", Numeric(10, 2), nullable=False),
    Column("status", Text, nullable=False, index=True),
    Column("placed_at", DateTime(timezone=True), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("fulfilment", Text, nullable=False, server_default="delivery"),
    Column("cancel_reason", Text),
    Column("driver_id", Text),
    # sha256 of the customer's tracking token: the token itself is shown once, at placement.
    Column("tracking_token_sha256", Text),
)

# Client retries of a placement: the same key with the same body returns the same order.
idempotency_keys_table = Table(
    "idempotency_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("request_sha256", Text, nullable=False),
    Column("order_id", Text, ForeignKey("orders.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Personal data lives here only, never in order events; erasure empties the row's details.
# A row is a customer (signed in with a code: one per phone number and per email address) or
# a guest order's contact snapshot (``guest``: one per order, never found by phone or email).
customers_table = Table(
    "customers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text),
    Column("phone", Text),
    Column("email", Text),
    Column("address", Text),
    Column("sms_opt_in", Boolean, nullable=False, server_default=text("true")),
    Column("email_opt_in", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("erased_at", DateTime(timezone=True)),
    Column("guest", Boolean, nullable=False, server_default=text("false")),
    Index(
        "customers_phone",
        "phone",
        unique=True,
        postgresql_where=text("phone IS NOT NULL AND NOT guest"),
    ),
    Index(
        "customers_email",
        "email",
        unique=True,
        postgresql_where=text("email IS NOT NULL AND NOT guest"),
    ),
)

# Sign-in codes, one per contact: keyed hashes only (of the contact and of the code), so the
# table holds no personal data and no code (see orders.domain.sign_in).
sign_in_codes_table = Table(
    "sign_in_codes",
    metadata,
    Column("contact_key", Text, primary_key=True),
    Column("code_digest", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("used_at", DateTime(timezone=True)),
)

menu_table = Table(
    "menu",
    metadata,
    Column("name", Text, primary_key=True),
    Column("base_price", Numeric(10, 2), nullable=False),
    Column("toppings", JSONB, nullable=False),
    Column("retired_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The extra toppings a customer may add to any pizza; a retired one can no longer be ordered.
extra_toppings_table = Table(
    "extra_toppings",
    metadata,
    Column("name", Text, primary_key=True),
    Column("retired_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# CloudEvents received over HTTP from other systems, de-duplicated by (source, id).
inbound_events_table = Table(
    "inbound_events",
    metadata,
    Column("source", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("subject", Text),
    Column("data", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("outcome", Text, nullable=False),
)
