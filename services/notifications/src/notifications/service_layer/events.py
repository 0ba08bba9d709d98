"""Event handlers of the notifications service: events in, delivery rows out.

Every handler runs in the consumer's transaction with its inbox row, so it applies once per
event. It never talks to a provider: it records one ``deliveries`` row per (event, channel)
(``UNIQUE (event_id, channel)``), keeps the order's facts, and arms or cancels the order's
durable late timer. The dispatchers send later (see ``dispatch.py``). The table at the end,
``EVENT_HANDLERS`` (and ``TOMBSTONE_HANDLERS``), names every subscription.

What each event tells the customer:

======================================  ==============================================
OrderPlaced                             order_received
TicketQueued (the kitchen's estimate)   order_confirmed, with the estimate; arms the late timer
EstimateChanged, KitchenCookingStarted  (nothing) moves the late timer
OrderReady (pickup)                     ready_for_pickup; cancels the late timer
OrderDeparted                           out_for_delivery
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from contracts.topics import CUSTOMER_CONTACTS
from eventing.consumer import ReceivedEvent, Tombstone
from notifications.adapters.repository import AbstractRepository
from notifications.domain.messages import (
    CONTACT_ERASED,
    PERSONAL_CHANNELS,
    Contact,
    Kind,
    Notice,
    Policy,
    format_time,
    format_total,
    late_due_at,
    pizzas_text,
    short_id,
)
from notifications.service_layer.notices import record_notice
from service_kit.handlers import EventHandler, TombstoneHandler

log = logging.getLogger("notifications.events")


@dataclass(frozen=True)
class EventDependencies:
    """What the handlers need besides the consumer's session: the rules, and the repository
    that writes in that session."""

    policy: Policy
    repository: Callable[[AsyncSession], AbstractRepository]


async def remember_order(
    repository: AbstractRepository,
    order_id: str,
    customer_id: str,
    fulfilment: str,
    tracking_token_sha256: str | None = None,
) -> None:
    """Who ordered and how it is fulfilled; the token's hash only ever comes with OrderPlaced,
    so an event without it (OrderConfirmed, whichever arrives first) keeps the one known."""
    await repository.remember_order(order_id, customer_id, fulfilment, tracking_token_sha256)
    # Deliveries recorded before the order was known (kitchen events can overtake it).
    await repository.assign_customer(order_id, customer_id)


async def arm_timer(
    repository: AbstractRepository, order_id: str, estimated_ready_at: datetime, policy: Policy
) -> None:
    """Arm or move the order's late timer; a cancelled or fired timer stays as it is."""
    due_at = late_due_at(estimated_ready_at, policy.late_grace)
    await repository.arm_timer(order_id, due_at, estimated_ready_at)
    await repository.set_estimate(order_id, estimated_ready_at)


async def cancel_timer(repository: AbstractRepository, order_id: str, policy: Policy) -> None:
    """The order is ready, cancelled or gone: no late warning. Also for a timer not armed yet."""
    await repository.cancel_timer(order_id, policy.clock())


# ------------------------------------------------------------------------------ handlers
async def order_received(
    session: AsyncSession, event: ReceivedEvent[OrderPlaced], deps: EventDependencies
) -> None:
    repository, order = deps.repository(session), event.data
    await remember_order(
        repository,
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
    notice = Notice(Kind.ORDER_RECEIVED, order.order_id, params)
    # The order's customer is the one just remembered: no need to read it back.
    await record_notice(repository, event.id, notice, deps.policy, customer_id=order.customer_id)


async def order_confirmed(
    session: AsyncSession, event: ReceivedEvent[OrderConfirmed], deps: EventDependencies
) -> None:
    order = event.data
    await remember_order(
        deps.repository(session), order.order_id, order.customer_id, order.fulfilment
    )


async def ticket_queued(
    session: AsyncSession, event: ReceivedEvent[TicketQueued], deps: EventDependencies
) -> None:
    repository, ticket = deps.repository(session), event.data
    await arm_timer(repository, ticket.order_id, ticket.estimated_ready_at, deps.policy)
    params = {
        "short_id": short_id(ticket.order_id),
        "estimate": format_time(ticket.estimated_ready_at),
    }
    notice = Notice(Kind.ORDER_CONFIRMED, ticket.order_id, params)
    await record_notice(repository, event.id, notice, deps.policy)


async def estimate_changed(
    session: AsyncSession, event: ReceivedEvent[EstimateChanged], deps: EventDependencies
) -> None:
    estimate = event.data
    await arm_timer(
        deps.repository(session), estimate.order_id, estimate.estimated_ready_at, deps.policy
    )


async def cooking_started(
    session: AsyncSession, event: ReceivedEvent[KitchenCookingStarted], deps: EventDependencies
) -> None:
    cooking = event.data
    if cooking.estimated_ready_at is not None:
        await arm_timer(
            deps.repository(session), cooking.order_id, cooking.estimated_ready_at, deps.policy
        )


async def order_ready(
    session: AsyncSession, event: ReceivedEvent[OrderReady], deps: EventDependencies
) -> None:
    repository, order = deps.repository(session), event.data
    await cancel_timer(repository, order.order_id, deps.policy)
    if order.fulfilment == "pickup":
        params = {"short_id": short_id(order.order_id)}
        notice = Notice(Kind.READY_FOR_PICKUP, order.order_id, params)
        await record_notice(repository, event.id, notice, deps.policy)


async def out_for_delivery(
    session: AsyncSession, event: ReceivedEvent[OrderDeparted], deps: EventDependencies
) -> None:
    repository, order_id = deps.repository(session), event.data.order_id
    await cancel_timer(repository, order_id, deps.policy)
    notice = Notice(Kind.OUT_FOR_DELIVERY, order_id, {"short_id": short_id(order_id)})
    await record_notice(repository, event.id, notice, deps.policy)


async def delivered(
    session: AsyncSession, event: ReceivedEvent[OrderDelivered], deps: EventDependencies
) -> None:
    repository, order_id = deps.repository(session), event.data.order_id
    await cancel_timer(repository, order_id, deps.policy)
    notice = Notice(Kind.DELIVERED, order_id, {"short_id": short_id(order_id)})
    await record_notice(repository, event.id, notice, deps.policy)


async def cancelled(
    session: AsyncSession, event: ReceivedEvent[OrderCancelled], deps: EventDependencies
) -> None:
    repository, order_id = deps.repository(session), event.data.order_id
    await cancel_timer(repository, order_id, deps.policy)
    params = {"short_id": short_id(order_id), "reason": event.data.reason}
    await record_notice(repository, event.id, Notice(Kind.CANCELLED, order_id, params), deps.policy)


async def no_late_warning(
    session: AsyncSession, event: ReceivedEvent[Any], deps: EventDependencies
) -> None:
    await cancel_timer(deps.repository(session), event.data.order_id, deps.policy)


async def contact_updated(
    session: AsyncSession, event: ReceivedEvent[CustomerContactUpdated], deps: EventDependencies
) -> None:
    repository, contact = deps.repository(session), event.data
    await repository.lock_customer(contact.customer_id)
    if await repository.is_erased(contact.customer_id):
        log.info(
            "contact record %s ignored: customer %s was erased",
            event.id,
            contact.customer_id,
        )
        return
    await repository.save_contact(
        Contact(
            customer_id=contact.customer_id,
            name=contact.name,
            email=contact.email,
            phone=contact.phone,
            email_opt_in=contact.email_opt_in,
            sms_opt_in=contact.sms_opt_in,
        ),
        contact.updated_at,
    )


async def erase_contact(
    session: AsyncSession, tombstone: Tombstone, deps: EventDependencies
) -> None:
    """Erasure: the contact goes, and so does every copy of personal data in deliveries and in
    unpublished dead letters; the mark keeps any later record of the customer's details out."""
    repository, customer_id = deps.repository(session), tombstone.key
    await repository.lock_customer(customer_id)
    await repository.mark_erased(customer_id)
    await repository.delete_contact(customer_id)
    # A contact record of theirs that could not be processed keeps its value until published.
    await repository.forget_dead_letters(tombstone.topic, customer_id)
    await repository.skip_pending(customer_id, PERSONAL_CHANNELS, CONTACT_ERASED)
    await repository.erase_contents(customer_id, PERSONAL_CHANNELS)


# The subscription names key the inbox rows of the events applied: they never change.
EVENT_HANDLERS: tuple[EventHandler[Any, EventDependencies], ...] = (
    EventHandler("notifications.order_received", OrderPlaced, order_received),
    EventHandler("notifications.order_confirmed", OrderConfirmed, order_confirmed),
    EventHandler("notifications.ticket_queued", TicketQueued, ticket_queued),
    EventHandler("notifications.estimate_changed", EstimateChanged, estimate_changed),
    EventHandler("notifications.cooking_started", KitchenCookingStarted, cooking_started),
    EventHandler("notifications.order_ready", OrderReady, order_ready),
    EventHandler("notifications.out_for_delivery", OrderDeparted, out_for_delivery),
    EventHandler("notifications.delivered", OrderDelivered, delivered),
    EventHandler("notifications.cancelled", OrderCancelled, cancelled),
    EventHandler("notifications.kitchen_ready", KitchenOrderReady, no_late_warning),
    EventHandler("notifications.ticket_withdrawn", TicketWithdrawn, no_late_warning),
    EventHandler("notifications.picked_up", OrderPickedUp, no_late_warning),
    EventHandler("notifications.contact_updated", CustomerContactUpdated, contact_updated),
)

TOMBSTONE_HANDLERS: tuple[TombstoneHandler[EventDependencies], ...] = (
    TombstoneHandler("notifications.contact_erased", CUSTOMER_CONTACTS.name, erase_contact),
)
