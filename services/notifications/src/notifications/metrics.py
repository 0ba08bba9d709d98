"""Business metrics of the notifications service (Prometheus conventions, bounded labels).

``notifications_sent_total{channel, outcome}``: messages by channel (``in_app``, ``email``,
``sms``) and outcome (``sent``, ``failed``). Only in-app messages exist so far: one is *sent*
when its row is written and the consumer's transaction (with the inbox row) commits. A
redelivered event that finds its message already written counts nothing.
"""

from __future__ import annotations

from prometheus_client import Counter

from eventing.metrics import after_commit as after_commit
from notifications.domain.messages import Channel

OUTCOMES = ("sent", "failed")

NOTIFICATIONS_SENT = Counter(
    "notifications_sent_total",
    "Messages to customers, by channel and outcome.",
    ["channel", "outcome"],
)

for _channel in Channel:  # every series is exported from the start, at 0
    for _outcome in OUTCOMES:
        NOTIFICATIONS_SENT.labels(channel=_channel.value, outcome=_outcome)


def notification(channel: Channel, outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown notification outcome {outcome!r}")
    NOTIFICATIONS_SENT.labels(channel=channel.value, outcome=outcome).inc()
