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
provider that is down or slow only delays its own channel. A dispatcher with nothing to do sleeps
until the doorbell (``adapters.doorbell``) says a delivery of its channel committed, or for a poll
interval (deliveries queued by another instance, retries coming due).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventing.backoff import backoff, pause
from eventing.failpoints import crash_point, error_point
from eventing.outage import Outage
from notifications.adapters import metrics
from notifications.adapters.doorbell import Doorbell
from notifications.adapters.repository import AbstractRepository
from notifications.domain.messages import (
    CONTACT_ERASED,
    Channel,
    Clock,
    Delivery,
    DeliveryStatus,
    SentMessage,
    Skip,
    address_for,
    give_up,
    retry_delay,
    utc_now,
)
from notifications.domain.privacy import without_recipient
from notifications.domain.templates import render
from notifications.service_layer.ports import Outgoing, Sender, SendError
from notifications.service_layer.unit_of_work import AbstractUnitOfWork

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
        uow: AbstractUnitOfWork,
        sender: Sender | None,
        retry: RetryPolicy,
        clock: Clock = utc_now,
        doorbell: Doorbell | None = None,
    ) -> None:
        if (sender is None) != (channel is Channel.IN_APP):
            raise ValueError("email and sms need a sender; in-app messages need none")
        self.channel = channel
        self._uow = uow
        self._sender = sender
        self._retry = retry
        self._clock = clock
        self._rung = asyncio.Event() if doorbell is None else doorbell.of(channel)

    async def run(self, poll_seconds: float, stopping: asyncio.Event) -> None:
        """Dispatch until ``stopping`` is set; sleeps ``poll_seconds`` when nothing is due."""
        handled = 0
        outage = Outage(log, f"{self.channel.value} dispatcher")
        try:
            while not stopping.is_set():
                # Cleared before looking: a delivery committed from now on rings it again.
                self._rung.clear()
                try:
                    error_point(f"dispatcher.{self.channel.value}")
                    busy = await self.dispatch_one()
                    handled += busy
                    if not busy or handled % 50 == 0:  # idle, or busy a while: refresh the gauge
                        await self.refresh_queue_depth()
                    outage.recovered()
                except Exception as error:  # noqa: BLE001 - nothing but ``stopping`` ends it
                    failures = outage.failed(error, traceback=True)
                    # Backs off whatever is queued meanwhile: the doorbell is not listened to.
                    await pause(max(poll_seconds, backoff(failures, poll_seconds, 5.0)), stopping)
                    continue
                if not busy:
                    await _sleep(poll_seconds, stopping, self._rung)
        finally:
            if self._sender is not None:
                await self._sender.close()

    async def refresh_queue_depth(self) -> None:
        async with self._uow as uow:
            pending = await uow.repository.count_pending(self.channel)
        metrics.queue_depth(self.channel, pending)

    async def dispatch_one(self) -> bool:
        """Handle the oldest due delivery of the channel, if any. True if there was one."""
        async with self._uow as uow:
            delivery = await uow.repository.next_due(self.channel, self._clock())
            if delivery is None:
                return False
            await self._deliver(uow.repository, delivery)
            await uow.commit()
            return True

    async def _deliver(self, repository: AbstractRepository, delivery: Delivery) -> None:
        now = self._clock()
        customer_id = delivery.customer_id or await repository.customer_of(delivery.order_id)
        if customer_id is None:
            await self._wait_or_skip(repository, delivery, "order not known")
            return
        if self.channel is Channel.IN_APP:
            rendered = render(delivery.kind, self.channel, delivery.params)
            await repository.add_message(
                event_id=delivery.event_id,
                order_id=delivery.order_id,
                customer_id=customer_id,
                channel=self.channel,
                kind=delivery.kind,
                body=rendered.body,
            )
            await self._finish(
                repository, delivery, DeliveryStatus.SENT, customer_id=customer_id, sent_at=now
            )
            return
        contact = await repository.contact(customer_id)
        address = address_for(self.channel, contact)
        if isinstance(address, Skip):
            if contact is None and await repository.is_erased(customer_id):
                # No contact will ever come: an order placed before the erasure, going on after.
                await self._finish(
                    repository, delivery, DeliveryStatus.SKIPPED, customer_id=customer_id,
                    reason=CONTACT_ERASED,
                )  # fmt: skip
            elif contact is None:
                await self._wait_or_skip(
                    repository, delivery, address.reason, customer_id=customer_id
                )
            else:
                await self._finish(
                    repository, delivery, DeliveryStatus.SKIPPED, customer_id=customer_id,
                    reason=address.reason,
                )  # fmt: skip
            return
        assert contact is not None
        assert self._sender is not None
        rendered = render(delivery.kind, self.channel, {**delivery.params, "name": contact.name})
        outgoing = Outgoing(delivery.idempotency_key, address, rendered.subject, rendered.body)
        attempts = delivery.attempts + 1
        try:
            provider_id = await self._sender.send(outgoing)
        except SendError as error:
            reason = without_recipient(error.reason, address)
            if error.retriable and not give_up(attempts, self._retry.max_attempts):
                delay = retry_delay(attempts, self._retry.base_seconds, self._retry.cap_seconds)
                await repository.postpone(
                    delivery.id,
                    attempts=attempts,
                    customer_id=customer_id,
                    next_attempt_at=self._clock() + timedelta(seconds=delay),
                    reason=f"attempt {attempts} failed: {reason}"[:1000],
                    now=self._clock(),
                )
                log.warning(
                    "%s delivery %d: attempt %d failed, next in %.1f s: %s",
                    self.channel.value, delivery.id, attempts, delay, reason,
                )  # fmt: skip
                repository.after_commit(lambda: metrics.retried(self.channel))
                return
            prefix = f"gave up after {attempts} attempts: " if error.retriable else ""
            await self._finish(
                repository, delivery, DeliveryStatus.FAILED, customer_id=customer_id,
                reason=(prefix + reason)[:1000], attempts=attempts,
            )  # fmt: skip
            log.warning(
                "%s delivery %d failed: %s%s", self.channel.value, delivery.id, prefix, reason
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
            repository, delivery, DeliveryStatus.SENT, customer_id=customer_id,
            attempts=attempts, sent_at=self._clock(),
            sent=SentMessage(address, rendered.subject, rendered.body, provider_id),
        )  # fmt: skip

    async def _wait_or_skip(
        self,
        repository: AbstractRepository,
        delivery: Delivery,
        reason: str,
        customer_id: str | None = None,
    ) -> None:
        now = self._clock()
        if now < delivery.wait_until:
            await repository.postpone(
                delivery.id,
                customer_id=customer_id,
                next_attempt_at=now + timedelta(seconds=self._retry.wait_poll_seconds),
                reason=f"waiting: {reason}",
                now=now,
            )
            return
        await self._finish(
            repository, delivery, DeliveryStatus.SKIPPED, customer_id=customer_id, reason=reason
        )

    async def _finish(
        self,
        repository: AbstractRepository,
        delivery: Delivery,
        status: DeliveryStatus,
        *,
        customer_id: str | None,
        reason: str | None = None,
        attempts: int | None = None,
        sent_at: datetime | None = None,
        sent: SentMessage | None = None,
    ) -> None:
        await repository.finish(
            delivery.id, status, customer_id=customer_id, reason=reason, now=self._clock(),
            attempts=attempts, sent_at=sent_at, sent=sent,
        )  # fmt: skip
        channel = self.channel
        repository.after_commit(lambda: metrics.notification(channel, status.value))


async def _sleep(seconds: float, stopping: asyncio.Event, rung: asyncio.Event) -> None:
    """Wait ``seconds``, or until ``stopping`` or ``rung`` is set if that comes first."""
    if rung.is_set():
        return
    waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(rung.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
