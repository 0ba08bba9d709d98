"""The relay's fetch against a real outbox: which rows it returns, and how PostgreSQL plans it.

The plan matters as much as the rows: with the table's statistics stale (analyzed while empty,
as autovacuum leaves it after a drain, or never analyzed) the planner, left to itself, read and
sorted the whole backlog on every fetch. The relay's worker sessions leave it one plan, a walk of
the primary key in id order; these tests read the plan, they time nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from eventing.database import asyncpg_dsn
from eventing.outbox import SHARD_COUNT, shard_of
from eventing.relay import _FETCH, _HAS_WORK, WORKER_SESSION_SETTINGS
from tests.support.eventing import eventing_database
from tests.support.infra import Infra

ALL_SHARDS = list(range(SHARD_COUNT))

_INSERT = """
INSERT INTO outbox (event_id, topic, partition_key, shard, aggregate_type, aggregate_id,
                    event_type, source, subject, payload, attempts, next_attempt_at, parked_at)
VALUES ($1, 'test.fetch', $2, $3, 'test', $2, 'test.fetch.happened.v1', '/test', $2, '{}',
        $4, now() + make_interval(secs => $5), CASE WHEN $6 THEN now() END)
RETURNING id
"""
# A backlog of many keys in one statement, as a burst of orders leaves it.
_FILL = """
INSERT INTO outbox (event_id, topic, partition_key, shard, aggregate_type, aggregate_id,
                    event_type, source, subject, payload)
SELECT gen_random_uuid(), 'test.fetch', 'key-' || n % 500, n % 16, 'test', 'key-' || n % 500,
       'test.fetch.happened.v1', '/test', 'key-' || n % 500, $2::jsonb
FROM generate_series(1, $1) AS n
"""


@pytest.fixture
async def worker(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    """A session of a fresh outbox, set up as the relay's worker sessions are."""
    url = await eventing_database(infra)
    conn = await asyncpg.connect(asyncpg_dsn(url), server_settings=WORKER_SESSION_SETTINGS)
    try:
        # The test decides when the table is analyzed.
        await conn.execute("ALTER TABLE outbox SET (autovacuum_enabled = false)")
        yield conn
    finally:
        await conn.close()


async def add_row(
    conn: asyncpg.Connection,
    key: str,
    *,
    attempts: int = 0,
    retry_in: float | None = None,
    parked: bool = False,
) -> int:
    row_id = await conn.fetchval(
        _INSERT, uuid.uuid4(), key, shard_of(key), attempts, retry_in, parked
    )
    return int(row_id)


async def fetched(
    conn: asyncpg.Connection,
    shards: list[int] = ALL_SHARDS,
    limit: int = 100,
    in_flight: list[int] | None = None,
) -> list[int]:
    in_flight = in_flight or []
    bounds = (in_flight[0], in_flight[-1]) if in_flight else (0, -1)
    return [row["id"] for row in await conn.fetch(_FETCH, shards, limit, in_flight, *bounds)]


async def test_a_key_waiting_for_a_retry_or_parked_holds_back_its_later_rows(
    worker: asyncpg.Connection,
) -> None:
    waiting = await add_row(worker, "waiting", attempts=1, retry_in=3600)
    behind_waiting = await add_row(worker, "waiting")
    parked = await add_row(worker, "parked", attempts=3, parked=True)
    behind_parked = await add_row(worker, "parked")
    due = await add_row(worker, "due", attempts=1, retry_in=-1)
    behind_due = await add_row(worker, "due")
    healthy = [await add_row(worker, "healthy") for _ in range(3)]
    assert {waiting, behind_waiting, parked, behind_parked}.isdisjoint(await fetched(worker))
    assert await fetched(worker) == [due, behind_due, *healthy]
    assert await fetched(worker, limit=2) == [due, behind_due]
    # The prefetch beside a batch in flight reads what follows it, and rows it skipped.
    assert await fetched(worker, in_flight=[due, healthy[0]]) == [behind_due, *healthy[1:]]
    assert await fetched(worker, shards=[shard_of("healthy")]) == healthy
    assert await worker.fetchval(_HAS_WORK, ALL_SHARDS) == due

    # Only held-back rows left: nothing to do (an idle relay must not spin on them).
    await worker.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [due, behind_due])
    await worker.execute("DELETE FROM outbox WHERE partition_key = 'healthy'")
    assert await fetched(worker) == []
    assert await worker.fetchval(_HAS_WORK, ALL_SHARDS) is None


@pytest.mark.parametrize("state", ["analyzed", "analyzed while empty", "never analyzed"])
async def test_the_fetch_walks_the_primary_key_whatever_the_statistics(
    worker: asyncpg.Connection, state: str
) -> None:
    if state == "analyzed while empty":
        await worker.execute("ANALYZE outbox")
    await worker.execute(_FILL, 20_000, json.dumps({"padding": "x" * 400}))
    await add_row(worker, "failed", attempts=1, retry_in=3600)
    if state == "analyzed":
        await worker.execute("ANALYZE outbox")
    in_flight = list(range(1, 501))

    # The plan every fetch runs (the sessions use generic plans), and the planner's choice for
    # these very values, which it would run without that setting.
    args = (ALL_SHARDS, 500, in_flight, in_flight[0], in_flight[-1])
    await worker.execute("PREPARE relay_fetch(int[], int, bigint[], bigint, bigint) AS " + _FETCH)
    # EXECUTE takes no bound parameters: literals (integers only).
    literals = ", ".join(
        f"'{{{','.join(map(str, a))}}}'" if isinstance(a, list) else str(a) for a in args
    )
    generic = await explain(worker, f"EXECUTE relay_fetch({literals})")
    custom = await explain(worker, _FETCH, *args)
    has_work = await explain(worker, _HAS_WORK, ALL_SHARDS)

    for plan in (generic, custom, has_work):
        assert scans_of(plan, "o") == ["Index Scan using outbox_pkey"], plan
        assert not {"Sort", "Incremental Sort", "Gather", "Gather Merge"} & node_types(plan), plan


async def explain(conn: asyncpg.Connection, statement: str, *args: Any) -> dict[str, Any]:
    [row] = await conn.fetch("EXPLAIN (FORMAT JSON) " + statement, *args)
    plan: dict[str, Any] = json.loads(row[0])[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def node_types(plan: dict[str, Any]) -> set[str]:
    return {node["Node Type"] for node in nodes(plan)}


def scans_of(plan: dict[str, Any], alias: str) -> list[str]:
    return [
        f"{node['Node Type']} using {node['Index Name']}"
        if "Index Name" in node
        else node["Node Type"]
        for node in nodes(plan)
        if node.get("Alias") == alias
    ]
