"""Dispatchers: one per channel, each sending its channel's due deliveries one at a time.

A dispatcher claims the oldest due ``pending`` delivery of its channel with ``FOR UPDATE SKIP
LOCKED`` (so several service instances never send the same row at once), sends it, and records
the outcome in the same transaction that holds the claim:

* sent: status ``sent``, the recipient, rendered subject/body and the provider's id;
* transient failure: ``attempts + 1`` and ``next_attempt_at`` after a capped exponential back-off,
  or ``failed`` once ``max_attempts`` is reached;
* permanent failure: ``failed`` with the provider's reason;
* no usable address: ``skipped`` with the reason (opted out, no email, no phone, contact
  erased); a contact or an order not known yet is waited for until the row's ``wait_until``.

What a provider answers is stored and logged without the recipient's address or number
(``domain.privacy.without_recipient``): SMTP refusals name the mailbox, SMS APIs quote numbers.

The remaining window: a crash after the provider accepted a message and before this transaction
committed leaves the row ``pending``, so it is sent again after the restart. It is one message per
channel at most (one in flight per dispatcher), and the resend carries the same idempotency key:
the SMS provider drops it (``Idempotency-Key``), and the email has the same ``Message-ID``, which
lets receivers recognise it. In-app messages have no window: the message row and the ``sent``
mark commit together.

Channels never wait for each other: each dispatcher is its own task with its own connection, so a
provider that is down or slow only delays its own channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eventing.backoff import backoff
from eventing.failpoints import crash_point, error_point
from eventing.outage import Outage
from notifications import metrics
from notifications.adapters.orm import contacts_table, deliveries_table, messages_table
from notifications.domain.messages import (
    Channel,
    Contact,
    DeliveryStatus,
    Kind,
    Skip,
    address_for,
    give_up,
    retry_delay,
)
from notifications.domain.privacy import without_recipient
from notifications.service_layer.handlers import (
    CONTACT_ERASED,
    Clock,
    customer_of,
    is_erased,
    utc_now,
)
from notifications.service_layer.ports import Outgoing, Sender, SendError
from notifications.templates import render

log = logging.getLogger("notifications.dispatch")


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    max_attempts: int = 10
    wait_poll_seconds: float = 1.0  # how often a delivery waiting for its contact looks again


class UnexpectedProviderError(Exception):
    """A sender raised something other than ``SendError``; its text, cleaned, for the log."""


class Dispatcher:
    """Sends the deliveries of one channel (``sender`` is None for in-app messages)."""

    def __init__(
        self,
        channel: Channel,
        sessions: async_sessionmaker[AsyncSession],
        sender: Sender | None,
        retry: RetryPolicy,
        clock: Clock = utc_now,
    ) -> None:
        if (sender is None) != (channel is Channel.IN_APP):
            raise ValueError("email and sms need a sender; in-app messages need none")
        self.channel = channel
        self._sessions = sessions
        self._sender = sender
        self._retry = retry
        self._clock = clock

    async def run(self, poll_seconds: float, stopping: asyncio.Event) -> None:
        """Dispatch until ``stopping`` is set; sleeps ``poll_seconds`` when nothing is due."""
        handled = 0
        outage = Outage(log, f"{self.channel.value} dispatcher")
        try:
            while not stopping.is_set():
                pause = poll_seconds
                try:
                    error_point(f"dispatcher.{self.channel.value}")
                    busy = await self.dispatch_one()
                    handled += busy
                    if not busy or handled % 50 == 0:  # idle, or busy a while: refresh the gauge
                        await self.refresh_queue_depth()
                    outage.recovered()
                except Exception as error:  # noqa: BLE001 - nothing but ``stopping`` ends it
                    failures = outage.failed(error, traceback=True)
                    busy = False
                    pause = max(poll_seconds, backoff(failures, poll_seconds, 5.0))
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), timeout=pause)
        finally:
            if self._sender is not None:
                await self._sender.close()

    async def refresh_queue_depth(self) -> None:
        async with self._sessions() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(deliveries_table)
                .where(
                    deliveries_table.c.channel == self.channel.value,
                    deliveries_table.c.status == DeliveryStatus.PENDING.value,
                )
            )
        metrics.queue_depth(self.channel, int(pending or 0))

    async def dispatch_one(self) -> bool:
        """Handle the oldest due delivery of the channel, if any. True if there was one."""
        async with self._sessions() as session, session.begin():
            now = self._clock()
            row = (
                (
                    await session.execute(
                        select(deliveries_table)
                        .where(
                            deliveries_table.c.channel == self.channel.value,
                            deliveries_table.c.status == DeliveryStatus.PENDING.value,
                            deliveries_table.c.next_attempt_at <= now,
                        )
                        .order_by(deliveries_table.c.next_attempt_at, deliveries_table.c.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return False
            await self._deliver(session, row)
            return True

    async def _deliver(self, session: AsyncSession, row: Any) -> None:
        now = self._clock()
        customer_id = row["customer_id"] or await customer_of(session, row["order_id"])
        if customer_id is None:
            await self._wait_or_skip(session, row, "order not known")
            return
        kind, params = Kind(row["kind"]), dict(row["params"])
        if self.channel is Channel.IN_APP:
            rendered = render(kind, self.channel, params)
            await session.execute(
                insert(messages_table)
                .values(
                    order_id=row["order_id"],
                    customer_id=customer_id,
                    channel=self.channel.value,
                    kind=kind.value,
                    body=rendered.body,
                    event_id=row["event_id"],
                )
                .on_conflict_do_nothing()
            )
            await self._finish(
                session, row, DeliveryStatus.SENT, customer_id=customer_id, sent_at=now
            )
            return
        contact = await _contact(session, customer_id)
        address = address_for(self.channel, contact)
        if isinstance(address, Skip):
            if contact is None and await is_erased(session, customer_id):
                # No contact will ever come: an order placed before the erasure, going on after.
                await self._finish(
                    session, row, DeliveryStatus.SKIPPED, customer_id=customer_id,
                    reason=CONTACT_ERASED,
                )  # fmt: skip
            elif contact is None:
                await self._wait_or_skip(session, row, address.reason, customer_id=customer_id)
            else:
                await self._finish(
                    session, row, DeliveryStatus.SKIPPED, customer_id=customer_id,
                    reason=address.reason,
                )  # fmt: skip
            return
        assert contact is not None
        assert self._sender is not None
        rendered = render(kind, self.channel, {**params, "name": contact.name})
        outgoing = Outgoing(row["idempotency_key"], address, rendered.subject, rendered.body)
        attempts = row["attempts"] + 1
        try:
            provider_id = await self._sender.send(outgoing)
        except SendError as error:
            reason = without_recipient(error.reason, address)
            if error.retriable and not give_up(attempts, self._retry.max_attempts):
                delay = retry_delay(attempts, self._retry.base_seconds, self._retry.cap_seconds)
                await session.execute(
                    update(deliveries_table)
                    .where(deliveries_table.c.id == row["id"])
                    .values(
                        attempts=attempts,
                        customer_id=customer_id,
                        next_attempt_at=self._clock() + timedelta(seconds=delay),
                        reason=f"attempt {attempts} failed: {reason}"[:1000],
                        updated_at=self._clock(),
                    )
                )
                log.warning(
                    "%s delivery %d: attempt %d failed, next in %.1f s: %s",
                    self.channel.value, row["id"], attempts, delay, reason,
                )  # fmt: skip
                metrics.after_commit(session, lambda: metrics.retried(self.channel))
                return
            prefix = f"gave up after {attempts} attempts: " if error.retriable else ""
            await self._finish(
                session, row, DeliveryStatus.FAILED, customer_id=customer_id,
                reason=(prefix + reason)[:1000], attempts=attempts,
            )  # fmt: skip
            log.warning(
                "%s delivery %d failed: %s%s", self.channel.value, row["id"], prefix, reason
            )
            return
        except Exception as error:  # noqa: BLE001 - re-raised, with a text fit for the log
            # Rolled back and tried again on the next poll, as any failure of this transaction;
            # only the text changes, because the loop logs it and it may name the recipient.
            # Without its cause: a traceback would print the cause's text as it is.
            text = without_recipient(f"{type(error).__name__}: {error}", address)
            raise UnexpectedProviderError(text) from None
        crash_point("after_provider_accepted")  # the documented window, for the crash test
        await self._finish(
            session, row, DeliveryStatus.SENT, customer_id=customer_id, attempts=attempts,
            recipient=address, subject=rendered.subject, body=rendered.body,
            provider_id=provider_id, sent_at=self._clock(),
        )  # fmt: skip

    async def _wait_or_skip(
        self, session: AsyncSession, row: Any, reason: str, customer_id: str | None = None
    ) -> None:
        now = self._clock()
        if now < row["wait_until"]:
            await session.execute(
                update(deliveries_table)
                .where(deliveries_table.c.id == row["id"])
                .values(
                    customer_id=customer_id,
                    next_attempt_at=now + timedelta(seconds=self._retry.wait_poll_seconds),
                    reason=f"waiting: {reason}",
                    updated_at=now,
                )
            )
            return
        await self._finish(
            session, row, DeliveryStatus.SKIPPED, customer_id=customer_id, reason=reason
        )

    async def _finish(
        self, session: AsyncSession, row: Any, status: DeliveryStatus, **values: Any
    ) -> None:
        if status is DeliveryStatus.SENT:
            values.setdefault("reason", None)
        await session.execute(
            update(deliveries_table)
            .where(deliveries_table.c.id == row["id"])
            .values(status=status.value, updated_at=self._clock(), **values)
        )
        channel = self.channel
        metrics.after_commit(session, lambda: metrics.notification(channel, status.value))


async def _contact(session: AsyncSession, customer_id: str) -> Contact | None:
    row = (
        (
            await session.execute(
                select(contacts_table).where(contacts_table.c.customer_id == customer_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Contact(
        customer_id=row["customer_id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        email_opt_in=row["email_opt_in"],
        sms_opt_in=row["sms_opt_in"],
    )
