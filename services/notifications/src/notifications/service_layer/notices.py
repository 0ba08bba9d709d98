"""Recording a notice: the step the event handlers and the late timer share."""

from __future__ import annotations

from notifications.adapters import metrics
from notifications.adapters.repository import AbstractRepository
from notifications.domain.messages import Notice, Policy, deliveries_for


async def record_notice(
    repository: AbstractRepository,
    event_id: str,
    notice: Notice,
    policy: Policy,
    customer_id: str | None = None,
) -> int:
    """One pending delivery per channel; a repeated (event, channel) is ignored. Returns rows."""
    if customer_id is None:
        customer_id = await repository.customer_of(notice.order_id)  # None: resolved when sent
    channels = await repository.add_deliveries(
        deliveries_for(event_id, notice, customer_id, policy)
    )
    repository.after_commit(lambda: metrics.queued(channels))
    return len(channels)
