"""Tables of the orders database (the eventing tables come from ``eventing.database``)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, Table, Text, func
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
)
