"""Business metrics of the kitchen (Prometheus conventions: base units, bounded labels).

They move after the transaction committed: a cook's action after its own commit, a consumed
event's effect after the consumer's transaction (with its inbox row) committed, so a retried or
rolled-back attempt is never counted.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Histogram

from eventing.metrics import after_commit as after_commit

# Cooking an order takes minutes: 30 s to 1 h.
COOKING_BUCKETS = (30, 60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2700, 3600)
# Lateness against the estimate given when cooking started; negative means early. With negative
# buckets prometheus_client exports no _sum (OpenMetrics): use the buckets (quantiles) and _count.
LATENESS_BUCKETS = (-600, -300, -120, -60, -30, 0, 30, 60, 120, 300, 600, 1200, 1800)

TICKET_OUTCOMES = ("queued", "withdrawn", "wasted", "ready")

KITCHEN_COOKING = Histogram(
    "kitchen_cooking_seconds",
    "Time from a cook starting an order to its pizzas being ready.",
    buckets=COOKING_BUCKETS,
)
KITCHEN_TICKETS = Counter(
    "kitchen_tickets_total",
    "Tickets reaching an outcome: queued, withdrawn (cancelled before cooking), "
    "wasted (cancelled while cooking), ready.",
    ["outcome"],
)
KITCHEN_LATENESS = Histogram(
    "kitchen_lateness_seconds",
    "How late an order was ready against its estimate (negative: early).",
    buckets=LATENESS_BUCKETS,
)

for _outcome in TICKET_OUTCOMES:  # every outcome is exported from the start, at 0
    KITCHEN_TICKETS.labels(outcome=_outcome)


def ticket_outcome(outcome: str) -> None:
    if outcome not in TICKET_OUTCOMES:
        raise ValueError(f"unknown ticket outcome {outcome!r}")
    KITCHEN_TICKETS.labels(outcome=outcome).inc()


def ticket_ready(
    started_at: datetime | None, ready_at: datetime | None, lateness_seconds: float | None
) -> None:
    ticket_outcome("ready")
    if started_at is not None and ready_at is not None:
        KITCHEN_COOKING.observe(max(0.0, (ready_at - started_at).total_seconds()))
    if lateness_seconds is not None:
        KITCHEN_LATENESS.observe(lateness_seconds)
