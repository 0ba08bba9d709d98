from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, UniqueConstraint, func

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
    UniqueConstraint("event_id", "channel", name="messages_once_per_event_and_channel"),
)
