"""Orders through the running system: placement throughput, and end-to-end latency per consumer.

End-to-end latency is measured from the HTTP response that created an event (201 for placing,
200 for confirming) to the commit of the consumer's transaction that applied it. The commit time
comes from PostgreSQL itself (``track_commit_timestamp``: ``pg_xact_commit_timestamp(xmin)`` of
the consumer's inbox row, written in the same transaction as the effect), so polling adds no
delay and no load. Client and server share the machine's clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.cpu import CpuMeter
from bench.stats import latency_summary_ms
from contracts.catalogue import OrderConfirmed, OrderPlaced
from contracts.topics import ORDERS
from eventing.database import asyncpg_dsn
from notifications.domain.messages import Channel, idempotency_key
from tests.support import reconcile
from tests.support.infra import Infra
from tests.support.lifecycle import new_order
from tests.support.load import Http, RunResult, Timing, fixed_concurrency, fixed_rate
from tests.support.polling import NotReached, eventually
from tests.support.system import System

# consumer service -> (event type it applies, topic it comes from, HTTP step that caused it)
MEASURED_HOPS: dict[str, tuple[str, str, str]] = {
    "kitchen": (OrderConfirmed.event_type, ORDERS.name, "confirmed"),
    "notifications": (OrderPlaced.event_type, ORDERS.name, "placed"),
    "analytics": (OrderPlaced.event_type, ORDERS.name, "placed"),
}


async def place(http: Http, timing: Timing) -> dict[str, Any]:
    reply = await http.post("/orders", json=new_order())
    timing.answered("placed")
    if reply.status != 201:
        raise RuntimeError(f"place: HTTP {reply.status}: {reply.text[:200]}")
    body: dict[str, Any] = reply.body
    return body


async def place_and_confirm(http: Http, timing: Timing) -> str:
    order = await place(http, timing)
    reply = await http.post(
        f"/orders/{order['id']}/confirm", headers={"X-Tracking-Token": order["tracking_token"]}
    )
    timing.answered("confirmed")
    if reply.status != 200:
        raise RuntimeError(f"confirm: HTTP {reply.status}: {reply.text[:200]}")
    order_id: str = order["id"]
    return order_id


def _http_summary(run: RunResult) -> dict[str, Any]:
    return {
        "orders": len(run.timings),
        "errors": len(run.errors),
        "first_errors": run.errors[:3],
        "seconds": round(run.elapsed, 1),
        "orders_per_second": round(run.rate, 1),
        "latency": latency_summary_ms([t.latency for t in run.timings]),
    }


def cpu_meter(infra: Infra | None = None) -> CpuMeter:
    """Components by command line: the services, their relays, the sinks, this process (and
    what it started). With ``infra``, only this process's children and ``infra``'s PostgreSQL
    and Kafka count, not those of other stacks on the machine."""
    names = {f"-m {service} relay": f"{service} relay" for service in ("orders", "kitchen")}
    names |= {f"-m {service} serve": service for service in MEASURED_HOPS | {"orders": ()}}
    names |= {"notifications.adapters.sinks": "notification sinks", "-m bench": "load generator"}
    names |= {"py-spy": "profiler"}
    return CpuMeter(names, None if infra is None else stack_roots(infra))


def stack_roots(infra: Infra) -> list[int]:
    """This process, and the PostgreSQL postmaster and Kafka broker of ``infra``'s stack."""
    roots = [os.getpid()]
    stack = Path(infra.local_env["STACK_DIR"])
    for pid_file in (stack / "postgres" / "data" / "postmaster.pid", stack / "pids" / "kafka.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            roots.append(int(pid_file.read_text().split()[0]))
    return roots


async def placement_throughput(
    system: System, *, workers: int, seconds: float, infra: Infra | None = None
) -> dict[str, Any]:
    """Closed loop: ``workers`` clients placing orders back to back."""
    meter = cpu_meter(infra)
    async with Http(system.url("orders"), connections=workers) as http:
        await fixed_concurrency(http, place, workers=workers, seconds=2)  # warm-up
        meter.start()
        run = await fixed_concurrency(http, place, workers=workers, seconds=seconds)
    return {
        "concurrency": workers,
        **_http_summary(run),
        "cores_used": meter.stop(run.elapsed),
    }


async def end_to_end_latency(
    system: System,
    bootstrap: str,
    *,
    rate: float,
    seconds: float,
    settle_timeout: float = 120,
    infra: Infra | None = None,
    sinks: Path | None = None,
) -> dict[str, Any]:
    """Place and confirm ``rate`` orders per second; latency to each consumer's commit and,
    with ``sinks`` (the directory the sinks process records to), to the order-received email
    and SMS reaching the sinks."""
    meter = cpu_meter(infra)
    meter.start()
    started_at = datetime.now(UTC)
    async with Http(system.url("orders"), connections=512) as http:
        run = await fixed_rate(http, place_and_confirm, rate=rate, seconds=seconds)
    cores_used = meter.stop(run.elapsed)
    responses: dict[str, dict[str, float]] = {
        order_id: timing.responses
        for order_id, timing in zip(run.results, run.timings, strict=True)
    }
    result: dict[str, Any] = {
        "target_orders_per_second": rate,
        "http": _http_summary(run),
        "http_confirm_latency": latency_summary_ms(
            [t.responses["confirmed"] - t.responses["placed"] for t in run.timings]
        ),
        "consumers": {},
        "cores_used": cores_used,
    }
    deadline = time.monotonic() + settle_timeout
    known: dict[tuple[str, str], dict[str, str]] = {}  # (topic, type) -> event id -> order id
    for service, (event_type, topic, step) in MEASURED_HOPS.items():

        async def applied_events(
            service: str = service, event_type: str = event_type, topic: str = topic
        ) -> tuple[dict[str, str], dict[str, float]]:
            """Event id -> order id of the events applied, and when each was applied."""
            # Event ids are made by the services: the topic says which event is whose.
            if len(known.get((topic, event_type), {})) < len(responses):
                known[(topic, event_type)] = await _events_of(
                    bootstrap, topic, event_type, responses.keys(), started_at
                )
            events = known[(topic, event_type)]
            applied = await _commit_times(system.databases[service], event_type)
            done = {event_id: order for event_id, order in events.items() if event_id in applied}
            return done, applied

        try:
            done, applied = await eventually(
                applied_events,
                until=lambda found: len(found[0]) >= len(responses),
                timeout=max(0.0, deadline - time.monotonic()),
                interval=1,
                what=f"every order's {event_type} applied by {service}",
            )
        except NotReached as late:  # the figures say how many were applied
            done, applied = late.last
        latencies = [applied[event_id] - responses[order][step] for event_id, order in done.items()]
        result["consumers"][service] = {
            "event": event_type,
            "from": "HTTP 201 (place)" if step == "placed" else "HTTP 200 (confirm)",
            "applied": len(done),
            "expected": len(responses),
            **(latency_summary_ms(latencies) if latencies else {}),
        }
    if sinks is not None:
        placed = known.get((ORDERS.name, OrderPlaced.event_type), {})
        result["sinks"] = await _handed_to_sinks(sinks, placed, responses, deadline)
    return result


# sink -> (the file it records to, the field with the message's key, the channel it serves)
SINKS: dict[str, tuple[str, str, Channel]] = {
    "smtp": ("emails.jsonl", "message_id", Channel.EMAIL),
    "sms": ("sms.jsonl", "idempotency_key", Channel.SMS),
}


async def _handed_to_sinks(
    directory: Path,
    placed: dict[str, str],
    responses: dict[str, dict[str, float]],
    deadline: float,
) -> dict[str, Any]:
    """Latency from placement's HTTP 201 to the sinks receiving the order-received message,
    per channel. Every message carries a key made from the event and the channel (the SMS's
    Idempotency-Key, the email's Message-ID): it says which event caused it."""
    figures: dict[str, Any] = {}
    for sink, (file_name, field, channel) in SINKS.items():
        wanted = {idempotency_key(event_id, channel): order for event_id, order in placed.items()}
        arrived = await _receipts(directory / file_name, field, wanted, deadline, sink)
        latencies = [at - responses[wanted[key]]["placed"] for key, at in arrived.items()]
        figures[sink] = {
            "message": "order received",
            "from": "HTTP 201 (place)",
            "received": len(arrived),
            "expected": len(wanted),
            **(latency_summary_ms(latencies) if latencies else {}),
        }
    return figures


async def _receipts(
    path: Path, field: str, wanted: Collection[str], deadline: float, sink: str
) -> dict[str, float]:
    """When each wanted message arrived, once all did or at the deadline."""
    try:
        return await eventually(
            lambda: _first_receipts(path, field, wanted),
            until=lambda found: len(found) >= len(wanted),
            timeout=max(0.0, deadline - time.monotonic()),
            interval=1,
            what=f"every order-received message at the {sink} sink",
        )
    except NotReached as late:  # the figures say how many arrived
        last: dict[str, float] = late.last
        return last


def _first_receipts(path: Path, field: str, wanted: Collection[str]) -> dict[str, float]:
    """Key -> when the sink first received the message of that key (a resend keeps its key)."""
    first: dict[str, float] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # the line the sink is writing now
            continue
        key = record[field].strip("<>").split("@", 1)[0]
        if key in wanted and key not in first:
            first[key] = datetime.fromisoformat(record["received_at"]).timestamp()
    return first


async def _events_of(
    bootstrap: str, topic: str, event_type: str, order_ids: Iterable[str], since: datetime
) -> dict[str, str]:
    """Event id -> order id of every ``event_type`` event of these orders on ``topic``."""
    events, _ = await reconcile.read_events(bootstrap, topic, since, set(order_ids))
    return {e.event_id: e.order_id for e in events if e.event_type == event_type}


async def _commit_times(database_url: str, event_type: str) -> dict[str, float]:
    """Event id -> when the consumer's last handler of that event committed (epoch seconds)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT event_id, max(extract(epoch FROM pg_xact_commit_timestamp(xmin))) AS at "
            "FROM inbox WHERE event_type = $1 GROUP BY event_id",
            event_type,
        )
    finally:
        await conn.close()
    return {row["event_id"]: float(row["at"]) for row in rows if row["at"] is not None}
