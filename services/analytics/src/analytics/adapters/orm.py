from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, Table, Text

metadata = MetaData()

# One row per order, built from events alone (never from the orders database).
order_facts_table = Table(
    "order_facts",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("placed_at", DateTime(timezone=True), nullable=False, index=True),
    Column("pizzas", Integer, nullable=False),
    Column("total", Numeric(10, 2), nullable=False),
    Column("status", Text, nullable=False),
)
