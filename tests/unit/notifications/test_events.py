"""The event handlers' rules, against an in-memory repository: what each event records, the
late timer it arms or cancels, contacts kept unless erased, and what an erasure removes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from contracts.catalogue import (
    CustomerContactUpdated,
    EstimateChanged,
    KitchenCookingStarted,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderReady,
    TicketQueued,
)
from eventing.consumer import Tombstone
from notifications.domain.messages import (
    CONTACT_ERASED,
    Channel,
    Contact,
    DeliveryStatus,
    Kind,
    Policy,
    TimerStatus,
    idempotency_key,
)
from notifications.service_layer.events import (
    EVENT_HANDLERS,
    TOMBSTONE_HANDLERS,
    EventDependencies,
)
from service_kit.handlers import subscriptions, tombstone_subscriptions
from tests.unit.notifications.fakes import NOW, FakeRepository, received

GRACE = timedelta(minutes=5)
ESTIMATE = NOW + timedelta(minutes=20)


@pytest.fixture
def repository() -> FakeRepository:
    return FakeRepository()


async def apply(repository: FakeRepository, data: Any, event_id: str | None = None) -> str:
    """Apply ``data`` with every handler subscribed to its type, as the consumer would."""
    deps = EventDependencies(Policy(late_grace=GRACE, clock=lambda: NOW), lambda _: repository)
    event = received(data, event_id)
    for subscription in subscriptions(EVENT_HANDLERS, deps):
        if subscription.event is type(data):
            await subscription.handler(None, event)  # type: ignore[arg-type]
    return event.id


def placed(order_id: str = "o-1", customer_id: str = "c-1", **fields: Any) -> OrderPlaced:
    line = OrderLine(pizza="Margherita", size="medium", quantity=2, unit_price=Decimal("9.50"))
    return OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        lines=(line,),
        total=Decimal("19.00"),
        placed_at=NOW,
        **fields,
    )


def queued(order_id: str = "o-1", estimate: datetime = ESTIMATE) -> TicketQueued:
    return TicketQueued(order_id=order_id, pizzas=2, estimated_ready_at=estimate, queued_at=NOW)


def contact(updated_at: datetime = NOW, **fields: Any) -> CustomerContactUpdated:
    return CustomerContactUpdated(
        customer_id="c-1", name="Anna", email="anna@example.com", updated_at=updated_at, **fields
    )


def test_the_subscription_names_are_the_inbox_keys_they_always_were() -> None:
    assert [(h.name, h.event.__name__) for h in EVENT_HANDLERS] == [
        ("notifications.order_received", "OrderPlaced"),
        ("notifications.order_confirmed", "OrderConfirmed"),
        ("notifications.ticket_queued", "TicketQueued"),
        ("notifications.estimate_changed", "EstimateChanged"),
        ("notifications.cooking_started", "KitchenCookingStarted"),
        ("notifications.order_ready", "OrderReady"),
        ("notifications.out_for_delivery", "OrderDeparted"),
        ("notifications.delivered", "OrderDelivered"),
        ("notifications.cancelled", "OrderCancelled"),
        ("notifications.kitchen_ready", "KitchenOrderReady"),
        ("notifications.ticket_withdrawn", "TicketWithdrawn"),
        ("notifications.picked_up", "OrderPickedUp"),
        ("notifications.contact_updated", "CustomerContactUpdated"),
    ]
    assert [h.name for h in TOMBSTONE_HANDLERS] == ["notifications.contact_erased"]


async def test_a_placed_order_is_remembered_and_told_on_every_channel_once(
    repository: FakeRepository,
) -> None:
    event_id = await apply(repository, placed(tracking_token_sha256="ab" * 32))
    assert repository.orders["o-1"].customer_id == "c-1"
    assert repository.orders["o-1"].tracking_token_sha256 == "ab" * 32
    email = repository.delivery(Channel.EMAIL)
    assert (email.kind, email.customer_id, email.status) == (
        Kind.ORDER_RECEIVED,
        "c-1",
        DeliveryStatus.PENDING,
    )
    assert email.params == {"short_id": "o-1", "pizzas": "2 pizzas", "total": "19.00 EUR"}
    assert email.idempotency_key == idempotency_key(event_id, Channel.EMAIL)
    assert email.wait_until == NOW + Policy().contact_wait
    assert {d.channel for d in repository.deliveries.values()} == set(Channel)

    await apply(repository, placed(), event_id)  # redelivered: nothing new
    assert len(repository.deliveries) == 3
    assert repository.pending_actions  # the queued metric waits for the commit


async def test_a_confirmation_keeps_the_tracking_token_placement_brought(
    repository: FakeRepository,
) -> None:
    await apply(repository, placed(tracking_token_sha256="ab" * 32))
    confirmed = OrderConfirmed(
        order_id="o-1",
        confirmed_at=NOW,
        confirmed_by="customer",
        customer_id="c-1",
        lines=(),
        fulfilment="pickup",
    )
    await apply(repository, confirmed)
    assert repository.orders["o-1"].fulfilment == "pickup"
    assert repository.orders["o-1"].tracking_token_sha256 == "ab" * 32


async def test_deliveries_before_the_order_get_its_customer_when_it_comes(
    repository: FakeRepository,
) -> None:
    await apply(repository, queued())  # the kitchen's event overtook the order's
    assert {d.customer_id for d in repository.deliveries.values()} == {None}
    await apply(repository, placed())
    assert {d.customer_id for d in repository.deliveries.values()} == {"c-1"}


async def test_the_estimate_arms_and_moves_the_late_timer(repository: FakeRepository) -> None:
    await apply(repository, placed())
    await apply(repository, queued())
    confirmed = repository.of(lambda d: d.kind is Kind.ORDER_CONFIRMED)
    assert confirmed[0].params == {"short_id": "o-1", "estimate": "19:50 UTC"}
    assert repository.timers["o-1"].due_at == ESTIMATE + GRACE
    later = ESTIMATE + timedelta(minutes=10)
    await apply(
        repository,
        EstimateChanged(
            order_id="o-1", estimated_ready_at=later, previous_estimated_ready_at=ESTIMATE
        ),
    )
    assert repository.timers["o-1"].due_at == later + GRACE
    assert repository.orders["o-1"].estimated_ready_at == later
    await apply(repository, KitchenCookingStarted(order_id="o-1", cook="luigi", started_at=NOW))
    assert repository.timers["o-1"].due_at == later + GRACE  # no estimate: left as it is
    cooked_by = NOW + timedelta(minutes=12)
    await apply(
        repository,
        KitchenCookingStarted(
            order_id="o-1", cook="luigi", started_at=NOW, estimated_ready_at=cooked_by
        ),
    )
    assert repository.timers["o-1"].due_at == cooked_by + GRACE


async def test_ready_for_pickup_is_told_ready_for_delivery_is_not(
    repository: FakeRepository,
) -> None:
    await apply(repository, queued("o-1"))
    await apply(repository, queued("o-2"))
    await apply(repository, OrderReady(order_id="o-1", ready_at=NOW, fulfilment="pickup"))
    await apply(repository, OrderReady(order_id="o-2", ready_at=NOW, fulfilment="delivery"))
    ready = {d.order_id for d in repository.of(lambda d: d.kind is Kind.READY_FOR_PICKUP)}
    assert ready == {"o-1"}
    assert {repository.timers[o].status for o in ("o-1", "o-2")} == {TimerStatus.CANCELLED}
    await apply(repository, queued("o-1"))  # a late estimate does not re-arm it
    assert repository.timers["o-1"].status is TimerStatus.CANCELLED


async def test_a_cancellation_tells_the_reason(repository: FakeRepository) -> None:
    cancelled = OrderCancelled(
        order_id="o-1", cancelled_at=NOW, reason="out of mozzarella", previous_status="pending"
    )
    await apply(repository, cancelled)
    [email] = repository.of(lambda d: d.channel is Channel.EMAIL)
    assert (email.kind, email.params["reason"]) == (Kind.CANCELLED, "out of mozzarella")
    assert repository.timers["o-1"].status is TimerStatus.CANCELLED


async def test_the_newest_contact_record_wins(repository: FakeRepository) -> None:
    await apply(repository, contact(phone="+39333"))
    await apply(repository, contact(updated_at=NOW - timedelta(hours=1), phone="+39444"))
    stored = await repository.contact("c-1")
    assert stored == Contact("c-1", "Anna", "anna@example.com", "+39333")
    assert repository.locked == ["c-1", "c-1"]


async def test_an_erasure_removes_the_contact_and_keeps_it_out(
    repository: FakeRepository,
) -> None:
    await apply(repository, contact())
    await apply(repository, placed())
    in_app = repository.delivery(Channel.IN_APP)
    sms = repository.delivery(Channel.SMS)
    repository.deliveries[sms.id] = replace(
        sms, status=DeliveryStatus.FAILED, recipient="+39333", body="Ciao"
    )
    deps = EventDependencies(Policy(clock=lambda: NOW), lambda _: repository)
    [erase] = tombstone_subscriptions(TOMBSTONE_HANDLERS, deps, lambda topic: "t1." + topic)
    gone = Tombstone(key="c-1", id="t-1", topic=erase.topic, partition=0, offset=7)
    await erase.handler(None, gone)  # type: ignore[arg-type]

    assert await repository.contact("c-1") is None
    assert repository.erased == {"c-1"}
    assert repository.forgotten == [(erase.topic, "c-1")]
    email = repository.delivery(Channel.EMAIL)
    assert (email.status, email.reason) == (DeliveryStatus.SKIPPED, CONTACT_ERASED)
    sms = repository.delivery(Channel.SMS)
    assert (sms.status, sms.recipient, sms.body) == (DeliveryStatus.FAILED, None, None)
    assert repository.delivery(Channel.IN_APP) == in_app  # no personal data: kept

    await apply(repository, contact(updated_at=datetime(2030, 1, 1, tzinfo=UTC)))
    assert await repository.contact("c-1") is None  # a late record of an erased customer
