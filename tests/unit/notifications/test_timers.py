"""The late timers against an in-memory unit of work: a due timer becomes one "running late"
warning per order, and fires once."""

from __future__ import annotations

from datetime import timedelta

from notifications.domain.messages import Kind, Policy, TimerStatus, late_event_id
from notifications.service_layer.timers import LateTimers
from tests.unit.notifications.fakes import NOW, FakeUnitOfWork

ESTIMATE = NOW - timedelta(minutes=10)


async def test_a_due_timer_fires_a_running_late_warning_once() -> None:
    uow = FakeUnitOfWork()
    await uow.repository.remember_order("o-1", "c-1", "delivery", None)
    await uow.repository.arm_timer("o-1", NOW - timedelta(minutes=5), ESTIMATE)
    await uow.repository.arm_timer("o-2", NOW + timedelta(minutes=5), NOW)
    timers = LateTimers(uow, Policy(clock=lambda: NOW))

    assert await timers.fire_due() == 1
    warnings = uow.repository.of(lambda d: d.kind is Kind.RUNNING_LATE)
    assert {(d.event_id, d.order_id, d.customer_id) for d in warnings} == {
        (late_event_id("o-1"), "o-1", "c-1")
    }
    assert len(warnings) == 3  # one per channel
    assert warnings[0].params == {"short_id": "o-1", "estimate": "19:20 UTC"}
    assert uow.repository.timers["o-1"].status is TimerStatus.FIRED
    assert uow.repository.timers["o-2"].status is TimerStatus.ARMED  # not due yet
    assert uow.commits == 1

    assert await timers.fire_due() == 0
    assert len(uow.repository.of(lambda d: d.kind is Kind.RUNNING_LATE)) == 3


async def test_a_cancelled_timer_never_fires() -> None:
    uow = FakeUnitOfWork()
    await uow.repository.arm_timer("o-1", NOW - timedelta(minutes=5), ESTIMATE)
    await uow.repository.cancel_timer("o-1", NOW)
    assert await LateTimers(uow, Policy(clock=lambda: NOW)).fire_due() == 0
    assert uow.repository.deliveries == {}
