"""Reconciliation: for the orders placed in a time range, is every event where it should be, and
every effect there exactly once?

    uv run python -m tests.support.reconcile [--since ISO] [--until ISO] [--json]

Reads the service databases (``ORDERS_DATABASE_URL``, ``KITCHEN_DATABASE_URL``,
``NOTIFICATIONS_DATABASE_URL``, ``ANALYTICS_DATABASE_URL``) and the topics
(``KAFKA_BOOTSTRAP_SERVERS``, group-less: it joins no consumer group and commits nothing).
``make reconcile`` takes them from the stack started by ``make up``. Exit status 1 when anything is
missing or doubled.

What is checked, per order placed in the range (``orders.placed_at``):

* **events**: the orders topic holds one event for each version 1..``orders.version`` (the
  ``aggregateversion`` extension). A version missing is a lost event; a version carried by two
  different event ids is a doubled event. The same event id delivered twice is the at-least-once
  duplicate consumers absorb: counted, not an error.
* **applied**: every consumer handler that applies an event type (as its inbox shows) has an
  inbox row for every event of that type in the range. The inbox key (handler, event id) makes
  a second application impossible; a missing row is an event not applied.
* **effects exactly once**, where the effect is observable beyond the inbox: one kitchen ticket
  and one ``TicketQueued`` per confirmed order; three notification deliveries (email, SMS,
  in-app) per notifying event, each sent or skipped with a reason, and no kind of message twice
  for one order and channel; one analytics fact row per order, in the status the orders
  database holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from contracts.catalogue import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderDeparted,
    OrderPlaced,
    TicketQueued,
)
from contracts.topics import KITCHEN, ORDERS
from eventing.cloudevents_kafka import AGGREGATE_VERSION
from eventing.database import asyncpg_dsn
from eventing.tap import TopicReader

# Kafka records are stamped by the relay after the order's commit: read from a little earlier.
_READ_MARGIN = timedelta(minutes=5)


@dataclass
class Finding:
    order_id: str
    what: str

    def __str__(self) -> str:
        return f"{self.order_id}: {self.what}"


@dataclass
class Report:
    since: datetime
    until: datetime
    orders: int = 0
    events: int = 0
    wire_duplicates: int = 0
    missing: list[Finding] = field(default_factory=list)
    doubled: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.doubled

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "orders": self.orders,
            "events": self.events,
            "wire_duplicates": self.wire_duplicates,
            "missing": [str(f) for f in self.missing],
            "doubled": [str(f) for f in self.doubled],
            "checked": self.checked,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class TopicEvent:
    event_id: str
    event_type: str
    order_id: str
    version: int | None


async def read_events(
    bootstrap: str, topic: str, since: datetime, order_ids: set[str]
) -> tuple[list[TopicEvent], int]:
    """The CloudEvents of these orders on ``topic`` (from ``since`` on); and wire duplicates."""
    records: list[ConsumerRecord[Any, Any]] = []
    async with TopicReader(bootstrap, [topic]) as reader:
        await reader.start_at_time(since - _READ_MARGIN)
        async for batch in reader.read_to_end(batch=10_000):
            records.extend(batch)
    seen: set[str] = set()
    events: list[TopicEvent] = []
    duplicates = 0
    for record in records:
        # Any producer may have written anything on the topic: only our events are counted.
        headers = {
            name: value.decode(errors="replace")
            for name, value in record.headers
            if value is not None
        }
        order_id = headers.get("ce_subject", "")
        if order_id not in order_ids or "ce_id" not in headers:
            continue
        if headers["ce_id"] in seen:
            duplicates += 1
            continue
        seen.add(headers["ce_id"])
        version = headers.get(f"ce_{AGGREGATE_VERSION}")
        events.append(
            TopicEvent(
                headers["ce_id"],
                headers.get("ce_type", ""),
                order_id,
                int(version) if version else None,
            )
        )
    return events, duplicates


async def _fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def check_versions(report: Report, versions: dict[str, int], events: Iterable[TopicEvent]) -> None:
    by_version: dict[tuple[str, int], set[str]] = defaultdict(set)
    for event in events:
        if event.version is not None:
            by_version[(event.order_id, event.version)].add(event.event_type)
    for order_id, version in versions.items():
        for v in range(1, version + 1):
            carried = by_version.get((order_id, v))
            if not carried:
                report.missing.append(Finding(order_id, f"{ORDERS.name}: no event for version {v}"))
    counted = Counter((e.order_id, e.version) for e in events if e.version is not None)
    for (order_id, v), count in counted.items():
        if count > 1:
            report.doubled.append(
                Finding(order_id, f"{ORDERS.name}: {count} different events for version {v}")
            )


async def check_applied(report: Report, service: str, url: str, events: list[TopicEvent]) -> None:
    """Every handler of the service that applies a type has applied every event of that type."""
    handlers: dict[str, list[str]] = defaultdict(list)
    for row in await _fetch(url, "SELECT DISTINCT handler, event_type FROM inbox"):
        handlers[row["event_type"]].append(row["handler"])
    ids = [event.event_id for event in events if event.event_type in handlers]
    applied = {
        (row["handler"], row["event_id"])
        for row in await _fetch(
            url, "SELECT handler, event_id FROM inbox WHERE event_id = ANY($1::text[])", ids
        )
    }
    for event in events:
        for handler in handlers.get(event.event_type, []):
            if (handler, event.event_id) not in applied:
                report.missing.append(
                    Finding(
                        event.order_id, f"{service}: {handler} did not apply {event.event_type}"
                    )
                )
    report.checked.append(f"{service}: inbox of {sum(map(len, handlers.values()))} handler(s)")


async def check_kitchen(
    report: Report, url: str, order_events: list[TopicEvent], kitchen_events: list[TopicEvent]
) -> None:
    confirmed = {e.order_id for e in order_events if e.event_type == OrderConfirmed.event_type}
    tickets = {
        row["order_id"]
        for row in await _fetch(
            url, "SELECT order_id FROM tickets WHERE order_id = ANY($1::text[])", list(confirmed)
        )
    }
    for order_id in sorted(confirmed - tickets):
        report.missing.append(Finding(order_id, "kitchen: no ticket for a confirmed order"))
    queued = Counter(e.order_id for e in kitchen_events if e.event_type == TicketQueued.event_type)
    for order_id in sorted(confirmed):
        if queued[order_id] == 0:
            report.missing.append(Finding(order_id, f"{KITCHEN.name}: no TicketQueued"))
        elif queued[order_id] > 1:
            report.doubled.append(
                Finding(order_id, f"{KITCHEN.name}: {queued[order_id]} TicketQueued events")
            )
    report.checked.append("kitchen: one ticket and one TicketQueued per confirmed order")


# Events that notify the customer on every channel (notifications' deliveries, 3 rows each).
_NOTIFYING = {
    OrderPlaced.event_type,
    TicketQueued.event_type,
    OrderDeparted.event_type,
    OrderDelivered.event_type,
    OrderCancelled.event_type,
}
_CHANNELS = 3  # email, sms, in_app


async def check_notifications(report: Report, url: str, events: list[TopicEvent]) -> None:
    """One delivery per (event, channel), each sent or deliberately skipped; no kind twice."""
    order_ids = sorted({event.order_id for event in events})
    rows = await _fetch(
        url,
        "SELECT event_id, order_id, channel, kind, status, reason FROM deliveries "
        "WHERE order_id = ANY($1::text[])",
        order_ids,
    )
    per_event = Counter(row["event_id"] for row in rows)
    for event in events:
        if event.event_type in _NOTIFYING and per_event[event.event_id] != _CHANNELS:
            report.missing.append(
                Finding(
                    event.order_id,
                    f"notifications: {per_event[event.event_id]} of {_CHANNELS} deliveries "
                    f"for {event.event_type}",
                )
            )
    for row in rows:
        if row["status"] not in ("sent", "skipped"):
            report.missing.append(
                Finding(
                    row["order_id"],
                    f"notifications: {row['kind']} by {row['channel']} is {row['status']}"
                    + (f" ({row['reason']})" if row["reason"] else ""),
                )
            )
    kinds = Counter((row["order_id"], row["kind"], row["channel"]) for row in rows)
    for (order_id, kind, channel), count in kinds.items():
        if count > 1:
            report.doubled.append(Finding(order_id, f"notifications: {count}x {kind} by {channel}"))
    messages = await _fetch(
        url,
        "SELECT order_id, kind, count(*) AS n FROM messages WHERE order_id = ANY($1::text[]) "
        "GROUP BY order_id, kind HAVING count(*) > 1",
        order_ids,
    )
    for row in messages:
        report.doubled.append(
            Finding(row["order_id"], f"notifications: {row['n']} in-app {row['kind']} messages")
        )
    report.checked.append("notifications: 3 deliveries per notifying event, sent or skipped")


async def check_analytics(report: Report, url: str, statuses: dict[str, str]) -> None:
    """One fact row per order, in the status the orders service holds."""
    rows = await _fetch(
        url,
        "SELECT order_id, status FROM order_facts WHERE order_id = ANY($1::text[])",
        list(statuses),
    )
    projected = {row["order_id"]: row["status"] for row in rows}
    for order_id, status in statuses.items():
        if order_id not in projected:
            report.missing.append(Finding(order_id, "analytics: no order_facts row"))
        elif projected[order_id] != status:
            report.missing.append(
                Finding(order_id, f"analytics: status {projected[order_id]!r}, orders: {status!r}")
            )
    report.checked.append("analytics: one order_facts row per order, same status")


async def reconcile(
    urls: dict[str, str], bootstrap: str, since: datetime, until: datetime
) -> Report:
    report = Report(since, until)
    rows = await _fetch(
        urls["orders"],
        "SELECT id, version, status FROM orders WHERE placed_at >= $1 AND placed_at < $2",
        since,
        until,
    )
    versions = {row["id"]: row["version"] for row in rows}
    statuses = {row["id"]: row["status"] for row in rows}
    report.orders = len(versions)
    order_ids = set(versions)
    order_events, order_dups = await read_events(bootstrap, ORDERS.name, since, order_ids)
    kitchen_events, kitchen_dups = await read_events(bootstrap, KITCHEN.name, since, order_ids)
    report.events = len(order_events) + len(kitchen_events)
    report.wire_duplicates = order_dups + kitchen_dups
    check_versions(report, versions, order_events)
    report.checked.append(f"{ORDERS.name}: versions 1..n of every order, once each")
    await check_kitchen(report, urls["kitchen"], order_events, kitchen_events)
    if "notifications" in urls:
        await check_notifications(report, urls["notifications"], order_events + kitchen_events)
    if "analytics" in urls:
        await check_analytics(report, urls["analytics"], statuses)
    for service, events in (
        ("kitchen", order_events),
        ("notifications", order_events + kitchen_events),
        ("analytics", order_events + kitchen_events),
        ("orders", kitchen_events),
    ):
        if service in urls:
            await check_applied(report, service, urls[service], events)
    return report


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def database_urls() -> dict[str, str]:
    urls = {}
    for service in ("orders", "kitchen", "notifications", "analytics"):
        url = os.environ.get(f"{service.upper()}_DATABASE_URL")
        if url:
            urls[service] = url
    missing = {"orders", "kitchen"} - set(urls)
    if missing:
        raise SystemExit(f"set {', '.join(s.upper() + '_DATABASE_URL' for s in sorted(missing))}")
    return urls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--since", type=_parse_time, help="ISO 8601; default: an hour ago")
    parser.add_argument("--until", type=_parse_time, help="ISO 8601; default: now")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(hours=1)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    report = asyncio.run(reconcile(database_urls(), bootstrap, since, until))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            f"{report.orders} orders placed {since.isoformat()} .. {until.isoformat()}, "
            f"{report.events} events, {report.wire_duplicates} duplicate deliveries on the wire"
        )
        for line in report.checked:
            print(f"  checked  {line}")
        for finding in report.missing:
            print(f"  MISSING  {finding}")
        for finding in report.doubled:
            print(f"  DOUBLED  {finding}")
        print("OK: nothing missing, nothing doubled" if report.ok else "NOT OK")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
