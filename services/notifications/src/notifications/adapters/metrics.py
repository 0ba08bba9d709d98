"""Business metrics of the notifications service (Prometheus conventions, bounded labels).

* ``notifications_sent_total{channel, outcome}``: deliveries by channel (``in_app``, ``email``,
  ``sms``) and final outcome (``sent``, ``failed``, ``skipped``), counted once the dispatcher's
  transaction that records the outcome committed.
* ``notifications_retries_total{channel}``: transient provider failures that were rescheduled.
* ``notifications_queued_total{channel}``: deliveries recorded by the handlers (after commit; a
  redelivered event adds nothing).
* ``notifications_dispatch_queue{channel}``: pending deliveries (gauge, refreshed by each
  dispatcher while it polls).
* ``notifications_late_warnings_total``: late timers fired.
* ``notifications_sign_in_codes_total{channel, outcome}``: sign-in codes sent for the orders
  service (``sent``, ``refused`` for good by the provider, ``failed`` for now).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from notifications.domain.messages import Channel

OUTCOMES = ("sent", "failed", "skipped")

NOTIFICATIONS_SENT = Counter(
    "notifications_sent_total",
    "Deliveries to customers by channel and final outcome.",
    ["channel", "outcome"],
)
NOTIFICATIONS_RETRIES = Counter(
    "notifications_retries_total",
    "Transient provider failures rescheduled with back-off, by channel.",
    ["channel"],
)
NOTIFICATIONS_QUEUED = Counter(
    "notifications_queued_total", "Deliveries recorded by the event handlers.", ["channel"]
)
DISPATCH_QUEUE = Gauge(
    "notifications_dispatch_queue",
    "Pending deliveries per channel.",
    ["channel"],
    # Every worker counts the same table: the latest count is the instance's.
    multiprocess_mode="livemostrecent",
)
LATE_WARNINGS = Counter("notifications_late_warnings_total", "Late-order timers that fired.")
SIGN_IN_CODES = Counter(
    "notifications_sign_in_codes_total",
    "Sign-in codes sent for the orders service, by channel and outcome.",
    ["channel", "outcome"],
)
SIGN_IN_CODE_OUTCOMES = ("sent", "refused", "failed")

for _channel in Channel:  # every series is exported from the start, at 0
    for _outcome in OUTCOMES:
        NOTIFICATIONS_SENT.labels(channel=_channel.value, outcome=_outcome)
    NOTIFICATIONS_RETRIES.labels(channel=_channel.value)
    NOTIFICATIONS_QUEUED.labels(channel=_channel.value)
    DISPATCH_QUEUE.labels(channel=_channel.value)
for _channel in (Channel.SMS, Channel.EMAIL):
    for _outcome in SIGN_IN_CODE_OUTCOMES:
        SIGN_IN_CODES.labels(channel=_channel.value, outcome=_outcome)


def notification(channel: Channel, outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown notification outcome {outcome!r}")
    NOTIFICATIONS_SENT.labels(channel=channel.value, outcome=outcome).inc()


def retried(channel: Channel) -> None:
    NOTIFICATIONS_RETRIES.labels(channel=channel.value).inc()


def queued(channels: Iterable[Channel]) -> None:
    for channel in channels:
        NOTIFICATIONS_QUEUED.labels(channel=channel.value).inc()


def queue_depth(channel: Channel, pending: int) -> None:
    DISPATCH_QUEUE.labels(channel=channel.value).set(pending)


def late_warnings(fired: int) -> None:
    LATE_WARNINGS.inc(fired)


def sign_in_code(channel: Channel, outcome: str) -> None:
    if outcome not in SIGN_IN_CODE_OUTCOMES:
        raise ValueError(f"unknown sign-in code outcome {outcome!r}")
    SIGN_IN_CODES.labels(channel=channel.value, outcome=outcome).inc()
