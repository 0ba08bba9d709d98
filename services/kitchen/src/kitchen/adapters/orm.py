from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

tickets_table = Table(
    "tickets",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("pizzas", Integer, nullable=False),
    Column("lines", JSONB, nullable=False),
    Column("status", Text, nullable=False, index=True),
    Column("queued_at", DateTime(timezone=True), nullable=False),
)
