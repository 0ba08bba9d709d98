"""The notifications domain: templates, addressing and opt-outs, back-off, idempotency keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from contracts.catalogue import (
    CustomerContactUpdated,
    OrderCancelled,
    OrderPlaced,
    OrderReady,
    TicketQueued,
)
from notifications.domain.messages import (
    CHANNELS,
    Channel,
    Contact,
    Kind,
    Message,
    Notice,
    Policy,
    Skip,
    address_for,
    deliveries_for,
    give_up,
    idempotency_key,
    late_due_at,
    late_event_id,
    pizzas_text,
    retry_delay,
)
from notifications.domain.templates import render
from notifications.service_layer.events import EVENT_HANDLERS

VARIABLES = {
    "short_id": "abcd1234",
    "pizzas": "2 pizzas",
    "total": "19.00 EUR",
    "estimate": "19:30 UTC",
    "reason": "out of mozzarella",
    "name": "Anna",
}


def contact(**overrides: object) -> Contact:
    fields: dict[str, object] = {
        "customer_id": "c-1",
        "name": "Anna",
        "email": "anna@example.com",
        "phone": "+39333",
        "email_opt_in": True,
        "sms_opt_in": True,
        **overrides,
    }
    return Contact(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("channel", CHANNELS)
def test_every_kind_has_a_template_per_channel(kind: Kind, channel: Channel) -> None:
    rendered = render(kind, channel, VARIABLES)
    assert "$" not in rendered.body and "abcd1234" in rendered.body
    if channel is Channel.EMAIL:
        assert rendered.subject and "abcd1234" in rendered.subject
        assert rendered.body.startswith("Hello Anna,")
    else:
        assert rendered.subject is None
        assert "Anna" not in rendered.body  # in-app and SMS carry no name
    if channel is Channel.SMS:
        assert len(rendered.body) <= 160, "one SMS segment"


def test_no_template_file_is_left_unused() -> None:
    names = {
        path.name
        for path in resources.files("notifications.domain.templates").iterdir()
        if path.name.endswith(".txt")
    }
    assert names == {f"{kind.value}.{channel.value}.txt" for kind in Kind for channel in CHANNELS}


def test_templates_carry_the_details_of_the_event() -> None:
    confirmed = render(Kind.ORDER_CONFIRMED, Channel.EMAIL, VARIABLES)
    assert confirmed.subject == "Your order abcd1234 is confirmed"
    assert "It should be ready at 19:30 UTC." in confirmed.body
    cancelled = render(Kind.CANCELLED, Channel.SMS, VARIABLES)
    assert cancelled.body == "Mario's Pizzeria: order abcd1234 was cancelled: out of mozzarella."
    late = render(Kind.RUNNING_LATE, Channel.IN_APP, VARIABLES)
    assert late.body == "Sorry, your order abcd1234 (due at 19:30 UTC) is running late."


def test_a_missing_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(KeyError):
        render(Kind.CANCELLED, Channel.SMS, {"short_id": "x"})


def test_addresses_and_opt_outs() -> None:
    assert address_for(Channel.EMAIL, contact()) == "anna@example.com"
    assert address_for(Channel.SMS, contact()) == "+39333"
    assert address_for(Channel.SMS, contact(sms_opt_in=False)) == Skip("customer opted out of sms")
    assert address_for(Channel.EMAIL, contact(email_opt_in=False)) == Skip(
        "customer opted out of email"
    )
    assert address_for(Channel.EMAIL, contact(email=None)) == Skip("customer has no email address")
    assert address_for(Channel.SMS, contact(phone=None)) == Skip("customer has no phone number")
    assert address_for(Channel.SMS, None) == Skip("no contact details for the customer")
    with pytest.raises(ValueError, match="needs no address"):
        address_for(Channel.IN_APP, contact())


def test_back_off_grows_exponentially_up_to_the_cap_with_jitter() -> None:
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (30, 60.0)]:
        delays = [retry_delay(attempts, base=2.0, cap=60.0) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), attempts
    assert not give_up(9, 10)
    assert give_up(10, 10)


def test_idempotency_keys_are_stable_per_event_and_channel() -> None:
    key = idempotency_key("evt-1", Channel.SMS)
    assert key == idempotency_key("evt-1", Channel.SMS)
    assert key != idempotency_key("evt-1", Channel.EMAIL)
    assert key != idempotency_key("evt-2", Channel.SMS)
    assert re.fullmatch(r"[0-9a-f-]{36}", key)
    assert late_event_id("o-1") == "late:o-1"


def test_the_late_timer_is_due_after_the_grace() -> None:
    estimate = datetime(2026, 1, 1, 19, 30, tzinfo=UTC)
    assert late_due_at(estimate, timedelta(minutes=5)) == datetime(2026, 1, 1, 19, 35, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        late_due_at(estimate.replace(tzinfo=None), timedelta(minutes=5))


def test_pizzas_text() -> None:
    assert pizzas_text(1) == "1 pizza"
    assert pizzas_text(3) == "3 pizzas"


def test_the_handlers_cover_the_events_that_tell_the_customer_something() -> None:
    handled = {handler.event for handler in EVENT_HANDLERS}
    for event in (OrderPlaced, TicketQueued, OrderReady, OrderCancelled, CustomerContactUpdated):
        assert event in handled
    assert Policy().late_grace == timedelta(minutes=5)


def test_a_notice_becomes_one_pending_delivery_per_channel() -> None:
    now = datetime(2026, 1, 1, 19, 30, tzinfo=UTC)
    policy = Policy(contact_wait=timedelta(minutes=10), clock=lambda: now)
    notice = Notice(Kind.DELIVERED, "o-1", {"short_id": "o-1"})
    deliveries = deliveries_for("evt-1", notice, None, policy)
    assert [d.channel for d in deliveries] == list(CHANNELS)
    for delivery in deliveries:
        assert delivery.idempotency_key == idempotency_key("evt-1", delivery.channel)
        assert (delivery.next_attempt_at, delivery.wait_until) == (now, now + timedelta(minutes=10))
        assert (delivery.kind, delivery.customer_id) == (Kind.DELIVERED, None)


def test_a_message_keeps_the_first_time_it_was_read_or_dismissed() -> None:
    first, later = (datetime(2026, 1, 1, hour, tzinfo=UTC) for hour in (19, 20))
    message = Message(1, "o-1", "c-1", Channel.IN_APP, Kind.DELIVERED, "Enjoy!", first)
    read = message.mark_read(first)
    assert (
        read.mark_read(later)
        == read
        == Message(1, "o-1", "c-1", Channel.IN_APP, Kind.DELIVERED, "Enjoy!", first, read_at=first)
    )
    dismissed = read.dismiss(later)
    assert (dismissed.read_at, dismissed.dismissed_at) == (first, later)
    assert dismissed.dismiss(first) == dismissed
