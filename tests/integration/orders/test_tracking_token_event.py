"""OrderPlaced carries the SHA-256 of the order's tracking token (never the token itself), so the
notifications service can admit the token's holder to the order's messages."""

from __future__ import annotations

import hashlib
import json

import asyncpg

from contracts.catalogue import OrderPlaced
from eventing.database import asyncpg_dsn
from tests.support.orders import OrdersApi


async def test_order_placed_carries_the_hash_of_the_tracking_token(orders_api: OrdersApi) -> None:
    placed = await orders_api.place()
    token = str(placed["tracking_token"])
    dsn = asyncpg_dsn(orders_api.database_url)
    connection = await asyncpg.connect(dsn)
    try:
        [row] = await connection.fetch(
            "SELECT payload FROM outbox WHERE event_type = $1 AND aggregate_id = $2",
            OrderPlaced.event_type,
            placed["id"],
        )
    finally:
        await connection.close()
    payload = json.loads(row["payload"])
    assert payload["tracking_token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row["payload"]
    OrderPlaced.model_validate(payload)  # what every consumer will validate it against
