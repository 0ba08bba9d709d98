"""The analytics projections against a known set of orders, and their rebuild.

Three hundred orders' events go to the test's own copies of the orders and kitchen topics
(``ANALYTICS_TOPIC_PREFIX``), so no other consumer works on these made-up orders; every third
order's kitchen events go before its order events, as a reader of two topics may see them. The
analytics service, in a consumer group of its own, projects them; every answer of its API for
the orders' window must equal the numbers computed in plain Python from the same orders
(tests/support/analytics.py). Then ``analytics rebuild`` replays the topics into fresh tables and
swaps them in while the service runs: every answer and every fact row must be unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.topics import KITCHEN, ORDERS
from eventing.database import asyncpg_dsn
from service_kit.auth import Role
from tests.support.analytics import Dataset, expected, generate, publish
from tests.support.eventing import create_topic, unique_prefix
from tests.support.infra import ROOT, Infra
from tests.support.polling import NotReached, eventually
from tests.support.processes import ServiceProcess, base_url, service_process
from tests.support.system import migrated_database
from tests.support.tokens import authorization, staff, staff_token

ORDER_COUNT = 300
REBUILD = [sys.executable, "-m", "analytics", "rebuild"]
QUESTIONS = (
    "overview",
    "timeseries?bucket=hour",
    "timeseries?bucket=day",
    "statuses",
    "cancellations",
    "pizzas",
    "preparation?bucket=hour",
    "on-time?bucket=hour",
    "cooks",
    "drivers",
    "peak-hours",
    "top-customers?limit=10",
)


@dataclass
class Analytics:
    process: ServiceProcess
    database_url: str
    env: dict[str, str]
    dataset: Dataset
    published: int
    token: str

    @property
    def url(self) -> str:
        return base_url(self.process)

    async def answers(
        self, client: httpx.AsyncClient, dataset: Dataset | None = None
    ) -> dict[str, Any]:
        window = (dataset or self.dataset).window
        found = {}
        for question in QUESTIONS:
            path, _, query = question.partition("?")
            params = dict(part.split("=") for part in query.split("&") if part)
            response = await client.get(
                f"{self.url}/{path}",
                params={**params, **window},
                headers=authorization(self.token),
            )
            assert response.status_code == 200, response.text
            found[question] = response.json()
        return found

    async def table_shapes(self) -> list[Any]:
        """Columns and indexes of the projection tables, to compare the migration's with the
        rebuild's."""
        conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            columns = await conn.fetch(
                "SELECT table_name, column_name, data_type, is_nullable, numeric_precision, "
                "numeric_scale FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name IN ('order_facts', 'order_lines') ORDER BY 1, 2"
            )
            indexes = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename IN ('order_facts', 'order_lines') ORDER BY 1"
            )
            constraints = await conn.fetch(
                "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
                "WHERE conrelid IN ('order_facts'::regclass, 'order_lines'::regclass) ORDER BY 1"
            )
        finally:
            await conn.close()
        return [dict(row) for row in [*columns, *indexes, *constraints]]

    async def fact_rows(self) -> list[dict[str, Any]]:
        conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            facts = await conn.fetch(
                "SELECT * FROM order_facts WHERE order_id LIKE $1 ORDER BY order_id",
                f"{self.dataset.run}-%",
            )
            lines = await conn.fetch(
                "SELECT * FROM order_lines WHERE order_id LIKE $1 ORDER BY order_id, line_no",
                f"{self.dataset.run}-%",
            )
        finally:
            await conn.close()
        return [dict(row) for row in facts] + [dict(row) for row in lines]


@pytest.fixture(scope="module")
async def analytics(infra: Infra) -> AsyncIterator[Analytics]:
    database_url = await migrated_database(infra, "analytics")
    prefix = unique_prefix()
    for topic in (ORDERS, KITCHEN):
        await create_topic(infra, prefix + topic.name, topic.partitions)
    env = {
        "ANALYTICS_CONSUMER_GROUP": f"analytics-test-{uuid.uuid4().hex[:8]}",
        "ANALYTICS_TOPIC_PREFIX": prefix,
    }
    process = service_process(infra, "analytics", database_url, extra_env=env)
    process.start()
    try:
        await process.wait_ready()
        dataset = generate(ORDER_COUNT)
        published = await publish(infra.kafka_bootstrap, dataset, topic_prefix=prefix)
        token = staff_token(Role.ANALYST, subject="analyst-ada")
        yield Analytics(process, database_url, {**process.env}, dataset, published, token)
    finally:
        process.terminate()


def mismatches(actual: Any, wanted: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``wanted`` (floats within a millisecond)."""
    if isinstance(wanted, dict) and isinstance(actual, dict):
        if set(actual) != set(wanted):
            return [f"{path}: keys {sorted(actual)} != {sorted(wanted)}"]
        return [d for key in wanted for d in mismatches(actual[key], wanted[key], f"{path}.{key}")]
    if isinstance(wanted, list) and isinstance(actual, list):
        if len(actual) != len(wanted):
            return [f"{path}: {len(actual)} items != {len(wanted)}: {actual} vs {wanted}"]
        return [
            d
            for i, pair in enumerate(zip(actual, wanted, strict=True))
            for d in mismatches(*pair, f"{path}[{i}]")
        ]
    if isinstance(wanted, float) and isinstance(actual, (int, float)):
        return [] if abs(actual - wanted) <= 1e-3 else [f"{path}: {actual} != {wanted}"]
    return [] if actual == wanted else [f"{path}: {actual!r} != {wanted!r}"]


async def until_answers_match(
    analytics: Analytics,
    client: httpx.AsyncClient,
    wanted: dict[str, Any],
    timeout: float = 90,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def differences() -> list[str]:
        nonlocal found
        found = await analytics.answers(client, dataset)
        return mismatches(found, wanted)

    try:
        await eventually(
            differences,
            until=lambda left: not left,
            timeout=timeout,
            interval=1,
            what="every answer as computed from the orders",
        )
    except NotReached as late:
        late.add_note(f"log:\n{analytics.process.log_tail()}")
        raise
    return found


async def test_every_projection_equals_numbers_computed_from_the_orders(
    analytics: Analytics,
) -> None:
    wanted = expected(analytics.dataset)
    # The dataset is varied enough for every question to be meaningful.
    assert wanted["overview"]["cancelled"] > 0 and wanted["cancellations"]["pizzas_wasted"] > 0
    assert len(wanted["timeseries?bucket=day"]) >= 2 and len(wanted["cooks"]) == 4
    assert 0 < wanted["on-time?bucket=hour"]["on_time"] < wanted["on-time?bucket=hour"]["measured"]
    async with httpx.AsyncClient(timeout=30) as client:
        await until_answers_match(analytics, client, wanted)
        one = analytics.dataset.orders[0]
        fact = await client.get(
            f"{analytics.url}/orders/{one.order_id}",
            headers=authorization(analytics.token),
        )
    assert fact.status_code == 200, fact.text
    assert fact.json()["status"] == one.status and fact.json()["total"] == str(one.total)
    assert len(fact.json()["lines"]) == len(one.lines)


async def test_the_api_needs_an_analyst_and_refuses_bad_ranges(analytics: Analytics) -> None:
    as_chef = staff(Role.CHEF, subject="chef-mario")
    ok = staff(Role.MANAGER, subject="boss")
    async with httpx.AsyncClient(base_url=analytics.url, timeout=10) as client:
        assert (await client.get("/overview")).status_code == 401
        assert (await client.get("/overview", headers=as_chef)).status_code == 403
        assert (await client.get("/overview", headers=ok)).status_code == 200
        for params in (
            {"from": "yesterday"},
            {"from": "2026-01-01T10:00:00"},  # no offset: which evening would that be?
            {"to": "0.5"},  # not a Unix timestamp
            {"to": "1767225600"},
            {"from": "2026-01-01"},
        ):
            response = await client.get("/overview", params=params, headers=ok)
            assert response.status_code == 422, (params, response.text)
            [issue] = response.json()["detail"]
            assert issue["loc"] == ["query", next(iter(params))]
            assert "RFC 3339" in issue["msg"]
        response = await client.get("/timeseries", params={"bucket": "minute"}, headers=ok)
        assert response.status_code == 422
        # `from` not earlier than `to` is an empty window: nothing was placed in it.
        for since, until in (
            ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
            ("2026-01-01T00:00:00+01:00",) * 2,
        ):
            empty = {"from": since, "to": until}
            overview = await client.get("/overview", params=empty, headers=ok)
            assert overview.status_code == 200, overview.text
            assert overview.json() == {
                "orders": 0,
                "cancelled": 0,
                "revenue": "0.00",
                "average_order_value": "0.00",
                "pizzas": 0,
                "customers": 0,
            }
            timeseries = await client.get("/timeseries", params=empty, headers=ok)
            assert timeseries.json() == []
        unknown = await client.get("/orders/no-such-order", headers=ok)
        assert unknown.status_code == 404
        assert (await client.get("/orders/not an id", headers=ok)).status_code == 422


async def test_rebuild_from_the_topics_equals_the_live_projections(
    analytics: Analytics, infra: Infra
) -> None:
    wanted = expected(analytics.dataset)
    async with httpx.AsyncClient(timeout=30) as client:
        live = await until_answers_match(analytics, client, wanted)
        live_rows = await analytics.fact_rows()
        assert len([row for row in live_rows if "status" in row]) == ORDER_COUNT
        migrated_shape = await analytics.table_shapes()

        result = await asyncio.to_thread(
            subprocess.run,
            REBUILD,
            env={**os.environ, **analytics.env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        # Every event of the dataset was replayed, once.
        assert report["applied"] == analytics.published, report
        assert report["skipped"] == report["duplicates"] == 0, report

        rebuilt = await analytics.answers(client)
        rebuilt_rows = await analytics.fact_rows()
    assert rebuilt == live
    assert rebuilt_rows == live_rows
    # The rebuilt tables are those of the migrations: columns, types, indexes, constraints.
    assert await analytics.table_shapes() == migrated_shape
    # The live service still works on the swapped-in tables.
    assert analytics.process.alive


async def test_events_arriving_during_a_rebuild_are_all_projected(
    analytics: Analytics, infra: Infra
) -> None:
    """The rebuild swaps tables under the running service: nothing published meanwhile is lost."""
    more = generate(120, after=analytics.dataset.until)
    process = await asyncio.create_subprocess_exec(
        *REBUILD,
        env={**os.environ, **analytics.env},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    published = await publish(
        infra.kafka_bootstrap, more, topic_prefix=analytics.env["ANALYTICS_TOPIC_PREFIX"]
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, stderr.decode()[-3000:]
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    # The rebuild read the first dataset and however much of the second had arrived.
    assert analytics.published <= report["applied"] <= analytics.published + published, report
    async with httpx.AsyncClient(timeout=30) as client:
        await until_answers_match(analytics, client, expected(more), dataset=more)
        await until_answers_match(analytics, client, expected(analytics.dataset))
    assert analytics.process.alive
