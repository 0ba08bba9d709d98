"""Prometheus metrics of the eventing library (outbox relay and consumer runtime).

Names follow Prometheus conventions: base units, ``_total`` for counters, ``_seconds`` for
durations, and only bounded labels (topic, consumer group, handler, event type, reason class).

A service serving with several HTTP worker processes (``<PREFIX>_HTTP_WORKERS``) runs
prometheus_client in its multiprocess mode: each worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR``, and ``exposition`` adds them up, so whichever worker answers a
scrape reports the whole instance. A gauge says how its workers' values combine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "BACKGROUND_FAILURES",
    "CONSUMER_DEAD_LETTERS",
    "CONSUMER_DEAD_LETTERS_KEPT",
    "CONSUMER_DEAD_LETTERS_TRUNCATED",
    "CONSUMER_DUPLICATES",
    "CONSUMER_EVENTS",
    "CONSUMER_HANDLER_FAILURES",
    "CONSUMER_HANDLER_SECONDS",
    "CONSUMER_LAG",
    "CONSUMER_RESTARTS",
    "CONSUMER_RETRIES",
    "HTTP_REQUESTS_SHED",
    "HTTP_WORKERS_STARTED",
    "LATENCY_BUCKETS",
    "OUTBOX_BACKLOG",
    "OUTBOX_BATCH_SIZE",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PARKED",
    "OUTBOX_PARKINGS",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PUBLISH_FAILURES",
    "OUTBOX_PUBLISH_LATENCY",
    "PROCESS_RESTARTS",
    "RELAY_OUTAGES",
    "RELAY_RECONNECTS",
    "RELAY_SHARDS_OWNED",
    "after_commit",
    "exposition",
]

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

OUTBOX_BACKLOG = Gauge("outbox_backlog_events", "Events in the outbox not yet published.")
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished, unparked event (outbox lag).",
)
OUTBOX_PARKED = Gauge("outbox_parked_events", "Events parked after failing to publish.")
OUTBOX_PUBLISHED = Counter(
    "outbox_published_events_total", "Events acknowledged by Kafka.", ["topic"]
)
OUTBOX_PUBLISH_LATENCY = Histogram(
    "outbox_publish_latency_seconds",
    "Time from the event's commit to the outbox until Kafka acknowledged it.",
    buckets=LATENCY_BUCKETS,
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "outbox_publish_failures_total", "Events whose publish failed, by kind.", ["kind"]
)
OUTBOX_PARKINGS = Counter(
    "outbox_parkings_total", "Events this relay parked after failed publishes."
)
OUTBOX_BATCH_SIZE = Histogram(
    "outbox_batch_size_events",
    "Events per relay batch.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000),
)
RELAY_SHARDS_OWNED = Gauge("outbox_relay_shards_owned", "Outbox shards this relay publishes.")
RELAY_RECONNECTS = Counter(
    "outbox_relay_reconnects_total",
    "Times the relay dropped its database session and producer after an error and began again.",
    ["error"],
)
BACKGROUND_FAILURES = Counter(
    "background_failures_total",
    "Failed attempts of a loop that keeps going (relay, consumer, dispatchers, timers, queue "
    "stream reads), by loop and error.",
    ["loop", "error"],
)
PROCESS_RESTARTS = Counter(
    "supervisor_restarts_total",
    "Times this process's supervisor restarted it after it exited, whatever it exited with.",
)
RELAY_OUTAGES = Counter(
    "outbox_relay_broker_unavailable_total", "Batches held back because Kafka was unreachable."
)

CONSUMER_EVENTS = Counter(
    "consumer_events_total", "Records consumed, by outcome.", ["group", "topic", "outcome"]
)
CONSUMER_HANDLER_FAILURES = Counter(
    "consumer_handler_failures_total", "Handler attempts that raised.", ["group", "handler"]
)
CONSUMER_RETRIES = Counter(
    "consumer_retries_total", "Handler attempts retried after a failure.", ["group", "handler"]
)
CONSUMER_DEAD_LETTERS = Counter(
    "consumer_dead_letters_total", "Records sent to the dead-letter topic.", ["group", "reason"]
)
CONSUMER_DEAD_LETTERS_KEPT = Counter(
    "consumer_dead_letters_kept_total",
    "Dead letters that could not be published and were kept in the dead_letters table, by cause "
    "(too_large, no_key, refused, timeout).",
    ["group", "cause"],
)
CONSUMER_DEAD_LETTERS_TRUNCATED = Counter(
    "consumer_dead_letters_truncated_total",
    "Dead letters too large for their topic, published as a truncated copy instead.",
    ["group"],
)
CONSUMER_DUPLICATES = Counter(
    "consumer_duplicates_skipped_total",
    "Redelivered events a handler had already applied, and redelivered records already "
    "dead-lettered (handler '-' when refused before any handler), skipped.",
    ["group", "handler"],
)
CONSUMER_HANDLER_SECONDS = Histogram(
    "consumer_handler_duration_seconds",
    "Time to apply one event in one handler, commit included.",
    ["group", "handler"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "consumer_lag_records",
    "Records behind the partition's end.",
    ["group", "topic", "partition"],
    # Of several workers, the one that owns the partition now is the one that set it last.
    multiprocess_mode="livemostrecent",
)
HTTP_REQUESTS_SHED = Counter(
    "http_requests_shed_total",
    "Requests refused at once (503) because too many were already waiting for a response.",
)
HTTP_WORKERS_STARTED = Counter(
    "http_workers_started_total",
    "HTTP worker processes started in this instance: more than its configured workers is "
    "workers that died and were replaced.",
)
CONSUMER_RESTARTS = Counter(
    "consumer_restarts_total",
    "Times the watchdog restarted a stalled or crashed consumer.",
    ["group"],
)


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` (e.g. count a business metric) once ``session``'s transaction commits.

    For work inside a transaction someone else commits, such as a consumer handler's (committed
    with its inbox row): a rolled-back attempt counts nothing, and its pending action is dropped,
    so a retry in the same session does not count twice.
    """
    sync_session = session.sync_session

    def committed(_session: Any) -> None:
        event.remove(sync_session, "after_rollback", rolled_back)
        action()

    def rolled_back(_session: Any) -> None:
        event.remove(sync_session, "after_commit", committed)

    event.listen(sync_session, "after_commit", committed, once=True)
    event.listen(sync_session, "after_rollback", rolled_back, once=True)


# Gauges of the "live" modes keep one file per worker: <kind>_<mode>_<pid>.db.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's: not one of ours, left alone
        return True
    return True


def exposition() -> bytes:
    """This process's metrics in the Prometheus text format; with several HTTP workers, the
    instance's (see the module's docstring). Live gauges of workers that died are dropped
    first: the worker that replaced one reports its own."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest()
    for path in Path(directory).glob("gauge_live*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if match is not None and not _alive(int(match[1])):
            multiprocess.mark_process_dead(int(match[1]), directory)  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
