"""Every step of a kitchen ticket, allowed and refused, and what cancelling does in each state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from kitchen.domain.estimates import KitchenAtCapacity, KitchenModel
from kitchen.domain.tickets import (
    CancelOutcome,
    InvalidTransition,
    Ticket,
    TicketLine,
    TicketStatus,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MODEL = KitchenModel()
S = TicketStatus


def ticket() -> Ticket:
    lines = (
        TicketLine("Margherita", "large", 2, ("olives",)),
        TicketLine("Hawaiian", "small", 1),
    )
    return Ticket.queue("order-1", lines, "pickup", at=NOW)


def cooking() -> Ticket:
    t = ticket()
    t.start_cooking(cook="chef-mario", at=NOW, model=MODEL, cooking=0)
    return t


def ready() -> Ticket:
    t = cooking()
    t.mark_ready(at=NOW + timedelta(minutes=13))
    return t


def test_a_new_ticket_is_queued_with_its_pizzas() -> None:
    t = ticket()
    assert (t.status, t.pizzas, t.queued_at, t.fulfilment) == (S.QUEUED, 3, NOW, "pickup")


def test_start_records_the_cook_and_fixes_the_estimate() -> None:
    t = cooking()
    assert (t.status, t.cook, t.started_at) == (S.COOKING, "chef-mario", NOW)
    assert t.estimated_ready_at == NOW + timedelta(minutes=12)  # 6 + 2 × 3


def test_start_is_refused_at_capacity() -> None:
    t = ticket()
    with pytest.raises(KitchenAtCapacity):
        t.start_cooking(cook="chef", at=NOW, model=MODEL, cooking=3)
    assert t.status is S.QUEUED


def test_ready_measures_lateness_against_the_estimate() -> None:
    t = ready()
    assert (t.status, t.ready_at, t.lateness_seconds) == (S.READY, NOW + timedelta(minutes=13), 60)
    early = cooking()
    early.mark_ready(at=NOW + timedelta(minutes=10, seconds=30))
    assert early.lateness_seconds == -90


@pytest.mark.parametrize(
    ("make", "step", "status", "reason"),
    [
        (ticket, "ready", S.QUEUED, "cooking has not started yet"),
        (cooking, "start", S.COOKING, "already cooking since 2026-11-26T12:00:00+00:00"),
        (ready, "start", S.READY, "already ready"),
        (ready, "ready", S.READY, "already ready"),
    ],
)
def test_refused_steps_name_the_status_and_why(
    make: Callable[[], Ticket], step: str, status: TicketStatus, reason: str
) -> None:
    t = make()
    attempt: Callable[[], object] = (
        (lambda: t.start_cooking(cook="chef", at=NOW, model=MODEL, cooking=0))
        if step == "start"
        else (lambda: t.mark_ready(at=NOW))
    )
    with pytest.raises(InvalidTransition) as refused:
        attempt()
    assert refused.value.current is status
    assert reason in refused.value.reason


def test_cancelling_a_queued_ticket_withdraws_it() -> None:
    t = ticket()
    assert t.cancel(at=NOW, reason="changed my mind") is CancelOutcome.WITHDRAWN
    assert (t.status, t.pizzas_wasted, t.cancel_reason) == (S.WITHDRAWN, 0, "changed my mind")
    with pytest.raises(InvalidTransition, match="cancelled before cooking"):
        t.start_cooking(cook="chef", at=NOW, model=MODEL, cooking=0)


def test_cancelling_a_cooking_ticket_wastes_its_pizzas() -> None:
    t = cooking()
    assert t.cancel(at=NOW, reason="no-show") is CancelOutcome.WASTED
    assert (t.status, t.pizzas_wasted, t.cancelled_at) == (S.WASTED, 3, NOW)
    with pytest.raises(InvalidTransition, match="thrown away"):
        t.mark_ready(at=NOW)


def test_cancelling_a_ready_ticket_leaves_it_ready_and_notes_it() -> None:
    t = ready()
    assert t.cancel(at=NOW, reason="too late") is CancelOutcome.ALREADY_READY
    assert (t.status, t.cancel_reason, t.pizzas_wasted) == (S.READY, "too late", 0)


def test_a_second_cancellation_changes_nothing() -> None:
    t = cooking()
    t.cancel(at=NOW, reason="first")
    assert t.cancel(at=NOW, reason="second") is CancelOutcome.ALREADY_CANCELLED
    assert (t.status, t.cancel_reason) == (S.WASTED, "first")
