"""Event handlers of the notifications service: events in, delivery rows out.

Every handler runs in the consumer's transaction with its inbox row, so it applies once per
event. It never talks to a provider: it records one ``deliveries`` row per (event, channel)
(``UNIQUE (event_id, channel)``), keeps the order's facts, and arms or cancels the order's
durable late timer. The dispatchers send later (see ``dispatch.py``).

What each event tells the customer:

======================================  ==============================================
OrderPlaced                             order_received
TicketQueued (the kitchen's estimate)   order_confirmed, with the estimate; arms the late timer
EstimateChanged, KitchenCookingStarted  (nothing) moves the late timer
OrderReady (pickup)                     ready_for_pickup; cancels the late timer
OrderDeparted                     out_for_delivery
OrderDelivered                          delivered
OrderCancelled                          cancelled, with the reason; cancels the late timer
KitchenOrderReady, TicketWithdrawn,     (nothing) cancel the late timer
OrderPickedUp, OrderReady (delivery)
late timer due (timers.py)              running_late
CustomerContactUpdated                  (nothing) the contact is stored, unless erased
tombstone on the contacts topic         the contact and personal data in deliveries are
                                        erased; the customer is marked erased
======================================  ==============================================

An erased customer stays erased: the orders service never gives an erased customer's id to
anyone again (a returning customer gets a new id), so a contact record of an erased id that
arrives after its tombstone is stale, whatever its ``updated_at`` (a dead letter replayed, a
late duplicate), and is not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import (
    CustomerContactUpdated,
    EstimateChanged,
    KitchenCookingStarted,
    KitchenOrderReady,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderDeparted,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
    TicketQueued,
    TicketWithdrawn,
)
from eventing.consumer import ReceivedEvent, Subscription, Tombstone, TombstoneSubscription
from eventing.deadletter import forget_dead_letters
from notifications import metrics
from notifications.adapters.orm import (
    contacts_table,
    deliveries_table,
    erased_customers_table,
    late_timers_table,
    orders_table,
)
from notifications.domain.messages import (
    CHANNELS,
    Channel,
    DeliveryStatus,
    Kind,
    Notice,
    TimerStatus,
    format_time,
    format_total,
    idempotency_key,
    late_due_at,
    pizzas_text,
    short_id,
)

log = logging.getLogger("notifications.handlers")

Clock = Callable[[], datetime]

# Why a delivery of an erased customer is not sent.
CONTACT_ERASED = "contact erased"

# Advisory lock namespace (two-int form) for one customer id, held until commit by the contact
# and tombstone handlers: a contact record applied while the customer's tombstone is being
# applied elsewhere (a consumer that lost its partition and does not know yet) waits for it,
# then sees the erasure mark.
CUSTOMER_LOCK = 0x4E43
_CUSTOMER_LOCK = text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:customer_id))")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    """The service's delivery rules that handlers need (from settings)."""

    late_grace: timedelta = timedelta(minutes=5)
    contact_wait: timedelta = timedelta(minutes=10)
    clock: Clock = utc_now


# ------------------------------------------------------------------------------ shared steps
async def lock_customer(session: AsyncSession, customer_id: str) -> None:
    await session.execute(_CUSTOMER_LOCK, {"namespace": CUSTOMER_LOCK, "customer_id": customer_id})


async def is_erased(session: AsyncSession, customer_id: str) -> bool:
    erased = await session.scalar(
        select(exists().where(erased_customers_table.c.customer_id == customer_id))
    )
    return bool(erased)


async def customer_of(session: AsyncSession, order_id: str) -> str | None:
    found: str | None = await session.scalar(
        select(orders_table.c.customer_id).where(orders_table.c.order_id == order_id)
    )
    return found


async def record_notice(
    session: AsyncSession,
    event_id: str,
    notice: Notice,
    policy: Policy,
    customer_id: str | None = None,
) -> int:
    """One pending delivery per channel; a repeated (event, channel) is ignored. Returns rows."""
    if customer_id is None:
        customer_id = await customer_of(session, notice.order_id)  # None: resolved when sent
    now = policy.clock()
    written = await session.execute(
        insert(deliveries_table)
        .values(
            [
                {
                    "event_id": event_id,
                    "channel": channel.value,
                    "order_id": notice.order_id,
                    "customer_id": customer_id,
                    "kind": notice.kind.value,
                    "params": notice.params,
                    "status": DeliveryStatus.PENDING.value,
                    "next_attempt_at": now,
                    "wait_until": now + policy.contact_wait,
                    "idempotency_key": idempotency_key(event_id, channel),
                }
                for channel in CHANNELS
            ]
        )
        .on_conflict_do_nothing(constraint="deliveries_once_per_event_and_channel")
        .returning(deliveries_table.c.channel)
    )
    channels = [Channel(row[0]) for row in written]
    metrics.after_commit(session, lambda: metrics.queued(channels))
    return len(channels)


async def remember_order(
    session: AsyncSession,
    order_id: str,
    customer_id: str,
    fulfilment: str,
    tracking_token_sha256: str | None = None,
) -> None:
    """Who ordered and how it is fulfilled; the token's hash only ever comes with OrderPlaced,
    so an event without it (OrderConfirmed, whichever arrives first) keeps the one known."""
    statement = insert(orders_table).values(
        order_id=order_id,
        customer_id=customer_id,
        fulfilment=fulfilment,
        tracking_token_sha256=tracking_token_sha256,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[orders_table.c.order_id],
            set_={
                "customer_id": customer_id,
                "fulfilment": fulfilment,
                "tracking_token_sha256": func.coalesce(
                    statement.excluded.tracking_token_sha256, orders_table.c.tracking_token_sha256
                ),
                "updated_at": utc_now(),
            },
        )
    )
    # Deliveries recorded before the order was known (kitchen events can overtake it).
    await session.execute(
        update(deliveries_table)
        .where(deliveries_table.c.order_id == order_id, deliveries_table.c.customer_id.is_(None))
        .values(customer_id=customer_id)
    )


async def arm_timer(
    session: AsyncSession, order_id: str, estimated_ready_at: datetime, policy: Policy
) -> None:
    """Arm or move the order's late timer; a cancelled or fired timer stays as it is."""
    due_at = late_due_at(estimated_ready_at, policy.late_grace)
    statement = insert(late_timers_table).values(
        order_id=order_id,
        due_at=due_at,
        estimated_ready_at=estimated_ready_at,
        status=TimerStatus.ARMED.value,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[late_timers_table.c.order_id],
            set_={
                "due_at": due_at,
                "estimated_ready_at": estimated_ready_at,
                "updated_at": utc_now(),
            },
            where=late_timers_table.c.status == TimerStatus.ARMED.value,
        )
    )
    await session.execute(
        update(orders_table)
        .where(orders_table.c.order_id == order_id)
        .values(estimated_ready_at=estimated_ready_at)
    )


async def cancel_timer(session: AsyncSession, order_id: str, policy: Policy) -> None:
    """The order is ready, cancelled or gone: no late warning. Also for a timer not armed yet."""
    now = policy.clock()
    statement = insert(late_timers_table).values(
        order_id=order_id,
        due_at=now,
        estimated_ready_at=now,
        status=TimerStatus.CANCELLED.value,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[late_timers_table.c.order_id],
            set_={"status": TimerStatus.CANCELLED.value, "updated_at": utc_now()},
            where=late_timers_table.c.status == TimerStatus.ARMED.value,
        )
    )


# ------------------------------------------------------------------------------ handlers
Handler = Callable[[AsyncSession, ReceivedEvent[Any]], Awaitable[None]]


def notification_handlers(policy: Policy) -> dict[str, tuple[type[Any], Handler]]:
    """The handlers, by inbox name, each with the event type it applies."""

    async def order_received(session: AsyncSession, event: ReceivedEvent[OrderPlaced]) -> None:
        order = event.data
        await remember_order(
            session,
            order.order_id,
            order.customer_id,
            order.fulfilment,
            tracking_token_sha256=order.tracking_token_sha256,
        )
        params = {
            "short_id": short_id(order.order_id),
            "pizzas": pizzas_text(sum(line.quantity for line in order.lines)),
            "total": format_total(order.total),
        }
        await record_notice(
            session, event.id, Notice(Kind.ORDER_RECEIVED, order.order_id, params), policy
        )

    async def order_confirmed(session: AsyncSession, event: ReceivedEvent[OrderConfirmed]) -> None:
        order = event.data
        await remember_order(session, order.order_id, order.customer_id, order.fulfilment)

    async def ticket_queued(session: AsyncSession, event: ReceivedEvent[TicketQueued]) -> None:
        ticket = event.data
        await arm_timer(session, ticket.order_id, ticket.estimated_ready_at, policy)
        params = {
            "short_id": short_id(ticket.order_id),
            "estimate": format_time(ticket.estimated_ready_at),
        }
        notice = Notice(Kind.ORDER_CONFIRMED, ticket.order_id, params)
        await record_notice(session, event.id, notice, policy)

    async def estimate_changed(
        session: AsyncSession, event: ReceivedEvent[EstimateChanged]
    ) -> None:
        await arm_timer(session, event.data.order_id, event.data.estimated_ready_at, policy)

    async def cooking_started(
        session: AsyncSession, event: ReceivedEvent[KitchenCookingStarted]
    ) -> None:
        if event.data.estimated_ready_at is not None:
            await arm_timer(session, event.data.order_id, event.data.estimated_ready_at, policy)

    async def order_ready(session: AsyncSession, event: ReceivedEvent[OrderReady]) -> None:
        order = event.data
        await cancel_timer(session, order.order_id, policy)
        if order.fulfilment == "pickup":
            notice = Notice(
                Kind.READY_FOR_PICKUP, order.order_id, {"short_id": short_id(order.order_id)}
            )
            await record_notice(session, event.id, notice, policy)

    async def out_for_delivery(session: AsyncSession, event: ReceivedEvent[OrderDeparted]) -> None:
        order_id = event.data.order_id
        await cancel_timer(session, order_id, policy)
        notice = Notice(Kind.OUT_FOR_DELIVERY, order_id, {"short_id": short_id(order_id)})
        await record_notice(session, event.id, notice, policy)

    async def delivered(session: AsyncSession, event: ReceivedEvent[OrderDelivered]) -> None:
        order_id = event.data.order_id
        await cancel_timer(session, order_id, policy)
        notice = Notice(Kind.DELIVERED, order_id, {"short_id": short_id(order_id)})
        await record_notice(session, event.id, notice, policy)

    async def cancelled(session: AsyncSession, event: ReceivedEvent[OrderCancelled]) -> None:
        order_id = event.data.order_id
        await cancel_timer(session, order_id, policy)
        params = {"short_id": short_id(order_id), "reason": event.data.reason}
        await record_notice(session, event.id, Notice(Kind.CANCELLED, order_id, params), policy)

    async def no_late_warning(session: AsyncSession, event: ReceivedEvent[Any]) -> None:
        await cancel_timer(session, event.data.order_id, policy)

    async def contact_updated(
        session: AsyncSession, event: ReceivedEvent[CustomerContactUpdated]
    ) -> None:
        contact = event.data
        await lock_customer(session, contact.customer_id)
        if await is_erased(session, contact.customer_id):
            log.info(
                "contact record %s ignored: customer %s was erased",
                event.id,
                contact.customer_id,
            )
            return
        values = {
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "email_opt_in": contact.email_opt_in,
            "sms_opt_in": contact.sms_opt_in,
            "updated_at": contact.updated_at,
        }
        await session.execute(
            insert(contacts_table)
            .values(customer_id=contact.customer_id, **values)
            .on_conflict_do_update(
                index_elements=[contacts_table.c.customer_id],
                set_=values,
                where=contacts_table.c.updated_at <= contact.updated_at,
            )
        )

    return {
        "notifications.order_received": (OrderPlaced, order_received),
        "notifications.order_confirmed": (OrderConfirmed, order_confirmed),
        "notifications.ticket_queued": (TicketQueued, ticket_queued),
        "notifications.estimate_changed": (EstimateChanged, estimate_changed),
        "notifications.cooking_started": (KitchenCookingStarted, cooking_started),
        "notifications.order_ready": (OrderReady, order_ready),
        "notifications.out_for_delivery": (OrderDeparted, out_for_delivery),
        "notifications.delivered": (OrderDelivered, delivered),
        "notifications.cancelled": (OrderCancelled, cancelled),
        "notifications.kitchen_ready": (KitchenOrderReady, no_late_warning),
        "notifications.ticket_withdrawn": (TicketWithdrawn, no_late_warning),
        "notifications.picked_up": (OrderPickedUp, no_late_warning),
        "notifications.contact_updated": (CustomerContactUpdated, contact_updated),
    }


def notification_subscriptions(policy: Policy) -> list[Subscription]:
    return [
        Subscription(name, event, handler)
        for name, (event, handler) in notification_handlers(policy).items()
    ]


async def erase_contact(session: AsyncSession, tombstone: Tombstone) -> None:
    """Erasure: the contact goes, and so does every copy of personal data in deliveries and in
    unpublished dead letters; the mark keeps any later record of the customer's details out."""
    customer_id = tombstone.key
    await lock_customer(session, customer_id)
    await session.execute(
        insert(erased_customers_table).values(customer_id=customer_id).on_conflict_do_nothing()
    )
    await session.execute(delete(contacts_table).where(contacts_table.c.customer_id == customer_id))
    # A contact record of theirs that could not be processed keeps its value until published.
    await forget_dead_letters(session, tombstone.topic, customer_id)
    of_customer = deliveries_table.c.customer_id == customer_id
    await session.execute(
        update(deliveries_table)
        .where(of_customer, deliveries_table.c.status == DeliveryStatus.PENDING.value)
        .where(deliveries_table.c.channel != Channel.IN_APP.value)
        .values(status=DeliveryStatus.SKIPPED.value, reason=CONTACT_ERASED, updated_at=utc_now())
    )
    await session.execute(
        update(deliveries_table)
        .where(of_customer, deliveries_table.c.channel != Channel.IN_APP.value)
        .values(recipient=None, subject=None, body=None)
    )


def tombstone_subscriptions(contacts_topic: str) -> list[TombstoneSubscription]:
    return [TombstoneSubscription("notifications.contact_erased", contacts_topic, erase_contact)]


def message_public(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "customer_id": row["customer_id"],
        "channel": row["channel"],
        "kind": row["kind"],
        "body": row["body"],
        "created_at": row["created_at"],
        "read_at": row["read_at"],
        "dismissed_at": row["dismissed_at"],
    }
