"""Business metrics of the orders service (Prometheus conventions: base units, bounded labels).

They move in the service layer after the transaction committed, so a rolled-back change is never
counted. An idempotent retry that returns an existing order is not a new order. The inbound
signature counter is the exception: it counts requests as they are authenticated.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import Counter, Histogram

from eventing.metrics import after_commit as after_commit
from orders.domain.model import OrderStatus

ORDERS_PLACED = Counter("orders_placed_total", "Orders placed (idempotent retries excluded).")
ORDERS_TRANSITIONS = Counter(
    "orders_transitions_total",
    "Order status changes committed, by the status reached (placing one reaches pending).",
    ["to_status"],
)
ORDER_VALUE = Histogram(
    "order_value_euros",
    "Total price of each order placed, in euros.",
    buckets=(5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 250, 500),
)

PLACEMENTS_LIMITED = Counter(
    "orders_placements_rate_limited_total",
    "Placements refused with 429, by the limit that refused them (client address or contact).",
    ["limit"],
)
SIGN_IN_CODES = Counter(
    "orders_sign_in_codes_total",
    "Sign-in codes asked for, by what became of them: sent, refused by the provider for that "
    "recipient, or not sent (the notifications service could not take them).",
    ["outcome"],
)
SIGN_INS = Counter(
    "orders_sign_ins_total",
    "Codes presented, by outcome: a customer signed in, a new customer signed up, or refused.",
    ["outcome"],
)
SIGN_IN_LIMITED = Counter(
    "orders_sign_in_rate_limited_total",
    "Sign-in requests refused with 429, by limit: codes per client address or per contact, "
    "attempts per client address.",
    ["limit"],
)

INBOUND_BODY_ONLY_SIGNATURES = Counter(
    "orders_inbound_body_only_signatures_total",
    "Inbound CloudEvents admitted with the deprecated body-only X-Signature: sha256=<hex> "
    "(ORDERS_INBOUND_ACCEPT_BODY_ONLY_SIGNATURE); at 0 for a while, the setting can go.",
)


def order_placed(total: Decimal) -> None:
    ORDERS_PLACED.inc()
    ORDERS_TRANSITIONS.labels(to_status=OrderStatus.PENDING.value).inc()
    ORDER_VALUE.observe(float(total))


def order_transitioned(to_status: OrderStatus) -> None:
    ORDERS_TRANSITIONS.labels(to_status=to_status.value).inc()


def placement_limited(limit: str) -> None:
    PLACEMENTS_LIMITED.labels(limit=limit).inc()


def body_only_signature_admitted() -> None:
    INBOUND_BODY_ONLY_SIGNATURES.inc()


def code_sent(outcome: str) -> None:
    SIGN_IN_CODES.labels(outcome=outcome).inc()


def signed_in(outcome: str) -> None:
    SIGN_INS.labels(outcome=outcome).inc()


def sign_in_limited(limit: str) -> None:
    SIGN_IN_LIMITED.labels(limit=limit).inc()


# Every status is exported from the start (at 0), so rates and dashboards see each series.
for _status in OrderStatus:
    ORDERS_TRANSITIONS.labels(to_status=_status.value)
for _limit in ("client", "contact"):
    PLACEMENTS_LIMITED.labels(limit=_limit)
for _outcome in ("sent", "refused", "not_sent"):
    SIGN_IN_CODES.labels(outcome=_outcome)
for _outcome in ("customer", "new_customer", "refused"):
    SIGN_INS.labels(outcome=_outcome)
for _limit in ("client", "contact", "attempts"):
    SIGN_IN_LIMITED.labels(limit=_limit)
