"""The durable late-order timer: due timers become "running late" deliveries.

Timers are rows (``late_timers``), armed by the kitchen's estimate plus the grace, moved by
estimate changes and cancelled when the order is ready or cancelled (handlers.py). This worker
fires the due ones: in one transaction it records the warning's deliveries (keyed by
``late:<order_id>``, so at most one warning per order) and marks the timer fired. A restart loses
nothing: a timer that came due while the service was down fires at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eventing.backoff import backoff
from eventing.outage import Outage
from notifications.adapters.orm import late_timers_table
from notifications.domain.messages import (
    Kind,
    Notice,
    TimerStatus,
    format_time,
    late_event_id,
    short_id,
)
from notifications.metrics import LATE_WARNINGS, after_commit
from notifications.service_layer.handlers import Policy, record_notice

log = logging.getLogger("notifications.timers")


async def fire_due_timers(
    sessions: async_sessionmaker[AsyncSession], policy: Policy, limit: int = 100
) -> int:
    """Fire the timers due now (oldest first); returns how many fired."""
    async with sessions() as session, session.begin():
        due = (
            await session.execute(
                select(late_timers_table.c.order_id, late_timers_table.c.estimated_ready_at)
                .where(
                    late_timers_table.c.status == TimerStatus.ARMED.value,
                    late_timers_table.c.due_at <= policy.clock(),
                )
                .order_by(late_timers_table.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for order_id, estimated_ready_at in due:
            params = {"short_id": short_id(order_id), "estimate": format_time(estimated_ready_at)}
            notice = Notice(Kind.RUNNING_LATE, order_id, params)
            await record_notice(session, late_event_id(order_id), notice, policy)
            await session.execute(
                update(late_timers_table)
                .where(late_timers_table.c.order_id == order_id)
                .values(status=TimerStatus.FIRED.value, updated_at=policy.clock())
            )
        fired = len(due)
        after_commit(session, lambda: LATE_WARNINGS.inc(fired))
    return fired


async def run_timers(
    sessions: async_sessionmaker[AsyncSession],
    policy: Policy,
    poll_seconds: float,
    stopping: asyncio.Event,
    caught_up: Callable[[], bool] = lambda: True,
) -> None:
    """Fire due timers until ``stopping``; not before ``caught_up()``.

    After a restart, an event that cancels a timer (the order became ready while the service was
    down) may still be waiting in Kafka: timers wait until the consumer has drained its backlog.
    """
    outage = Outage(log, "late-order timers")
    while not stopping.is_set():
        if not caught_up():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=poll_seconds)
            continue
        pause = poll_seconds
        try:
            fired = await fire_due_timers(sessions, policy)
            outage.recovered()
        except Exception as error:  # noqa: BLE001 - nothing but ``stopping`` ends it
            failures = outage.failed(error, traceback=True)
            fired = 0
            pause = max(poll_seconds, backoff(failures, poll_seconds, 5.0))
        if not fired:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=pause)
