"""The durable late-order timer: due timers become "running late" deliveries.

Timers are rows (``late_timers``), armed by the kitchen's estimate plus the grace, moved by
estimate changes and cancelled when the order is ready or cancelled (``events.py``). This worker
fires the due ones: in one transaction it records the warning's deliveries (keyed by
``late:<order_id>``, so at most one warning per order) and marks the timer fired. A restart loses
nothing: a timer that came due while the service was down fires at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from eventing.backoff import backoff, pause
from eventing.outage import Outage
from notifications.adapters import metrics
from notifications.domain.messages import Kind, Notice, Policy, format_time, late_event_id, short_id
from notifications.service_layer.notices import record_notice
from notifications.service_layer.unit_of_work import AbstractUnitOfWork

log = logging.getLogger("notifications.timers")


class LateTimers:
    """Fires the due late timers of every order, in transactions of its own unit of work."""

    def __init__(self, uow: AbstractUnitOfWork, policy: Policy) -> None:
        self._uow = uow
        self._policy = policy

    async def fire_due(self, limit: int = 100) -> int:
        """Fire the timers due now (oldest first); returns how many fired."""
        policy = self._policy
        async with self._uow as uow:
            due = await uow.repository.due_timers(policy.clock(), limit)
            for timer in due:
                params = {
                    "short_id": short_id(timer.order_id),
                    "estimate": format_time(timer.estimated_ready_at),
                }
                notice = Notice(Kind.RUNNING_LATE, timer.order_id, params)
                await record_notice(uow.repository, late_event_id(timer.order_id), notice, policy)
                await uow.repository.fire_timer(timer.order_id, policy.clock())
            fired = len(due)
            uow.repository.after_commit(lambda: metrics.late_warnings(fired))
            await uow.commit()
        return fired

    async def run(
        self,
        poll_seconds: float,
        stopping: asyncio.Event,
        caught_up: Callable[[], bool] = lambda: True,
    ) -> None:
        """Fire due timers until ``stopping``; not before ``caught_up()``.

        After a restart, an event that cancels a timer (the order became ready while the service
        was down) may still be waiting in Kafka: timers wait until the consumer has drained its
        backlog.
        """
        outage = Outage(log, "late-order timers")
        while not stopping.is_set():
            if not caught_up():
                await pause(poll_seconds, stopping)
                continue
            wait = poll_seconds
            try:
                fired = await self.fire_due()
                outage.recovered()
            except Exception as error:  # noqa: BLE001 - nothing but ``stopping`` ends it
                failures = outage.failed(error, traceback=True)
                fired = 0
                wait = max(poll_seconds, backoff(failures, poll_seconds, 5.0))
            if not fired:
                await pause(wait, stopping)
