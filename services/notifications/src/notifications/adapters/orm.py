"""The notifications database.

Where an effect of one event lands, per order and channel:

* ``deliveries``: one row per (event, channel), ``UNIQUE (event_id, channel)``: the exactly-once
  record. Written by the consumer's handlers in the transaction of their inbox row; worked off by
  one dispatcher per channel (status ``pending`` → ``sent`` | ``failed`` | ``skipped``).
* ``messages``: the in-app messages customers read, one per (event, channel='in_app'), written
  by the in-app dispatcher in the statement that marks its delivery sent.
* ``late_timers``: one durable "running late" timer per order.
* ``contacts`` (personal data; erased by a tombstone) and ``orders`` (who ordered, how it is
  fulfilled, the kitchen's estimate, the hash of its tracking token).
* ``erased_customers``: the customers a tombstone erased, so that a contact record of theirs
  that comes later (a replayed dead letter, a late duplicate) is never stored again.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

messages_table = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", Text, nullable=False, index=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("channel", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
    Column("dismissed_at", DateTime(timezone=True)),
    UniqueConstraint("event_id", "channel", name="messages_once_per_event_and_channel"),
)

contacts_table = Table(
    "contacts",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("email_opt_in", Boolean, nullable=False),
    Column("sms_opt_in", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Only the pseudonymous id and when: what it takes to refuse the customer's details from now on.
erased_customers_table = Table(
    "erased_customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

orders_table = Table(
    "orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("fulfilment", Text),
    Column("estimated_ready_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # OrderPlaced's hash of the tracking token: its holder may read the order's messages.
    Column("tracking_token_sha256", Text),
)

deliveries_table = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("order_id", Text, nullable=False, index=True),
    Column("customer_id", Text, index=True),
    Column("kind", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("wait_until", DateTime(timezone=True), nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("recipient", Text),
    Column("subject", Text),
    Column("body", Text),
    Column("provider_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("event_id", "channel", name="deliveries_once_per_event_and_channel"),
    Index(
        "deliveries_due",
        "channel",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
)

late_timers_table = Table(
    "late_timers",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("estimated_ready_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("late_timers_due", "due_at", postgresql_where=text("status = 'armed'")),
)
