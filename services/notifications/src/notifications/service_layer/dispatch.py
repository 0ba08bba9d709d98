"""Dispatchers: one per channel, each leasing its channel's due deliveries in batches and sending
them one at a time.

Every write of a dispatcher is one statement that commits on its own (``ports.DeliveryQueue``),
so a batch costs one statement to lease and one per outcome:

* the lease: up to ``batch_size`` of the oldest due ``pending`` deliveries of the channel that no
  other transaction holds (``FOR UPDATE SKIP LOCKED``), with their customer's contact, are made
  due again at the end of the lease, so that no other instance takes them meanwhile;
* the outcome of each, right after its send:
  * sent: status ``sent``, the recipient, rendered subject/body and the provider's id (in-app:
    the message row is written by the same statement);
  * transient failure: ``attempts + 1`` and ``next_attempt_at`` after a capped exponential
    back-off, or ``failed`` once ``max_attempts`` is reached;
  * permanent failure: ``failed`` with the provider's reason;
  * no usable address: ``skipped`` with the reason (opted out, no email, no phone, contact
    erased); a contact or an order not known yet is waited for until the row's ``wait_until``.

A send begins only while at least half the lease is left and gets at most a quarter of it, so
its outcome is written before another dispatcher could take the row. What is left of a batch
when that time runs out, the dispatcher stops or a failure interrupts it is released (due at
once); if even that cannot be written, the rows come due when their lease ends.

What a provider answers is stored and logged without the recipient's address or number
(``domain.privacy.without_recipient``): SMTP refusals name the mailbox, SMS APIs quote numbers.

The remaining window: a crash after the provider accepted a message and before its outcome was
written leaves the row ``pending``, so it is sent again once its lease ends. It is one message per
channel at most (one in flight per dispatcher), and the resend carries the same idempotency key:
the SMS provider drops it (``Idempotency-Key``), and the email has the same ``Message-ID``, which
lets receivers recognise it. In-app messages have no window: the message row and the ``sent``
mark are one statement, and the message is written once per event.

Channels never wait for each other: each dispatcher is its own task with its own connection, so a
provider that is down or slow only delays its own channel. A dispatcher with nothing to do sleeps
until the doorbell (``adapters.doorbell``) says a delivery of its channel committed, or for a poll
interval (deliveries queued by another instance, retries coming due).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventing.backoff import backoff, pause
from eventing.failpoints import crash_point, error_point
from eventing.outage import Outage
from notifications.adapters import metrics
from notifications.adapters.doorbell import Doorbell
from notifications.domain.messages import (
    CONTACT_ERASED,
    Channel,
    Clock,
    Delivery,
    DeliveryStatus,
    DueDelivery,
    SentMessage,
    Skip,
    address_for,
    give_up,
    retry_delay,
    utc_now,
)
from notifications.domain.privacy import without_recipient
from notifications.domain.templates import render
from notifications.service_layer.ports import (
    DeliveryQueue,
    Outgoing,
    Sender,
    SendError,
    TransientSendError,
)

log = logging.getLogger("notifications.dispatch")

# The queue-depth gauge is counted at most this often (a count per loop would double an idle
# dispatcher's statements).
QUEUE_DEPTH_EVERY_SECONDS = 1.0


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
        queue: DeliveryQueue,
        sender: Sender | None,
        retry: RetryPolicy,
        clock: Clock = utc_now,
        doorbell: Doorbell | None = None,
        *,
        batch_size: int = 20,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        if (sender is None) != (channel is Channel.IN_APP):
            raise ValueError("email and sms need a sender; in-app messages need none")
        self.channel = channel
        self._queue = queue
        self._sender = sender
        self._retry = retry
        self._clock = clock
        self._rung = asyncio.Event() if doorbell is None else doorbell.of(channel)
        self._batch_size = batch_size
        self._lease = lease
        self._queue_depth_due = 0.0

    async def run(self, poll_seconds: float, stopping: asyncio.Event) -> None:
        """Dispatch until ``stopping`` is set; sleeps ``poll_seconds`` when nothing is due."""
        outage = Outage(log, f"{self.channel.value} dispatcher")
        try:
            while not stopping.is_set():
                # Cleared before looking: a delivery committed from now on rings it again.
                self._rung.clear()
                try:
                    error_point(f"dispatcher.{self.channel.value}")
                    leased = await self.dispatch_due(stopping)
                    if time.monotonic() >= self._queue_depth_due:
                        await self.refresh_queue_depth()
                    outage.recovered()
                except Exception as error:  # noqa: BLE001 - nothing but ``stopping`` ends it
                    failures = outage.failed(error, traceback=True)
                    # Backs off whatever is queued meanwhile: the doorbell is not listened to.
                    await pause(max(poll_seconds, backoff(failures, poll_seconds, 5.0)), stopping)
                    continue
                if leased < self._batch_size:
                    # A short batch was all that was due: what commits from now on rings (the
                    # bell was cleared before the lease), so there is nothing to look for yet.
                    await _sleep(poll_seconds, stopping, self._rung)
        finally:
            if self._sender is not None:
                await self._sender.close()
            await self._queue.close()

    async def refresh_queue_depth(self) -> None:
        metrics.queue_depth(self.channel, await self._queue.count_pending(self.channel))
        self._queue_depth_due = time.monotonic() + QUEUE_DEPTH_EVERY_SECONDS

    async def dispatch_due(self, stopping: asyncio.Event | None = None) -> int:
        """Lease a batch of the channel's due deliveries and handle them in order, until the
        batch is done, half the lease is spent or ``stopping`` is set; returns how many were
        leased."""
        now = self._clock()
        lease_until = now + self._lease
        batch = await self._queue.lease_due(self.channel, now, lease_until, self._batch_size)
        for position, due in enumerate(batch):
            if (stopping is not None and stopping.is_set()) or (
                self._clock() > lease_until - self._lease / 2
            ):
                await self._release(batch[position:], lease_until)
                break
            try:
                await self._deliver(due, lease_until - self._lease / 4)
            except Exception:
                await self._release(batch[position:], lease_until)
                raise
        return len(batch)

    async def _release(self, rest: list[DueDelivery], lease_until: datetime) -> None:
        try:
            await self._queue.release([due.delivery.id for due in rest], lease_until, self._clock())
        except Exception as error:  # noqa: BLE001 - the lease's end releases them instead
            log.warning(
                "%s dispatcher: %d leased deliveries not released (%s: %s); due when the "
                "lease ends", self.channel.value, len(rest), type(error).__name__, error,
            )  # fmt: skip

    async def _deliver(self, due: DueDelivery, send_by: datetime) -> None:
        delivery, customer_id, contact = due.delivery, due.customer_id, due.contact
        now = self._clock()
        if customer_id is None:
            await self._wait_or_skip(delivery, "order not known")
            return
        if self.channel is Channel.IN_APP:
            rendered = render(delivery.kind, self.channel, delivery.params)
            await self._queue.send_in_app(
                delivery, customer_id=customer_id, body=rendered.body, now=now
            )
            metrics.notification(self.channel, DeliveryStatus.SENT.value)
            return
        address = address_for(self.channel, contact)
        if isinstance(address, Skip):
            if contact is None and due.erased:
                # No contact will ever come: an order placed before the erasure, going on after.
                await self._finish(
                    delivery, DeliveryStatus.SKIPPED, customer_id=customer_id,
                    reason=CONTACT_ERASED,
                )  # fmt: skip
            elif contact is None:
                await self._wait_or_skip(delivery, address.reason, customer_id=customer_id)
            else:
                await self._finish(
                    delivery, DeliveryStatus.SKIPPED, customer_id=customer_id,
                    reason=address.reason,
                )  # fmt: skip
            return
        assert contact is not None
        assert self._sender is not None
        rendered = render(delivery.kind, self.channel, {**delivery.params, "name": contact.name})
        outgoing = Outgoing(delivery.idempotency_key, address, rendered.subject, rendered.body)
        attempts = delivery.attempts + 1
        try:
            provider_id = await self._send(outgoing, send_by)
        except SendError as error:
            reason = without_recipient(error.reason, address)
            if error.retriable and not give_up(attempts, self._retry.max_attempts):
                delay = retry_delay(attempts, self._retry.base_seconds, self._retry.cap_seconds)
                await self._queue.postpone(
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
                metrics.retried(self.channel)
                return
            prefix = f"gave up after {attempts} attempts: " if error.retriable else ""
            await self._finish(
                delivery, DeliveryStatus.FAILED, customer_id=customer_id,
                reason=(prefix + reason)[:1000], attempts=attempts,
            )  # fmt: skip
            log.warning(
                "%s delivery %d failed: %s%s", self.channel.value, delivery.id, prefix, reason
            )
            return
        except Exception as error:  # noqa: BLE001 - re-raised, with a text fit for the log
            # Released and tried again after the loop's back-off, as any failure of a batch;
            # only the text changes, because the loop logs it and it may name the recipient.
            # Without its cause: a traceback would print the cause's text as it is.
            text = without_recipient(f"{type(error).__name__}: {error}", address)
            raise UnexpectedProviderError(text) from None
        crash_point("after_provider_accepted")  # the documented window, for the crash test
        await self._finish(
            delivery, DeliveryStatus.SENT, customer_id=customer_id,
            attempts=attempts, sent_at=self._clock(),
            sent=SentMessage(address, rendered.subject, rendered.body, provider_id),
        )  # fmt: skip

    async def _wait_or_skip(
        self,
        delivery: Delivery,
        reason: str,
        customer_id: str | None = None,
    ) -> None:
        now = self._clock()
        if now < delivery.wait_until:
            await self._queue.postpone(
                delivery.id,
                customer_id=customer_id,
                next_attempt_at=now + timedelta(seconds=self._retry.wait_poll_seconds),
                reason=f"waiting: {reason}",
                now=now,
            )
            return
        await self._finish(delivery, DeliveryStatus.SKIPPED, customer_id=customer_id, reason=reason)

    async def _finish(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        *,
        customer_id: str | None,
        reason: str | None = None,
        attempts: int | None = None,
        sent_at: datetime | None = None,
        sent: SentMessage | None = None,
    ) -> None:
        await self._queue.finish(
            delivery.id, status, customer_id=customer_id, reason=reason, now=self._clock(),
            attempts=attempts, sent_at=sent_at, sent=sent,
        )  # fmt: skip
        metrics.notification(self.channel, status.value)

    async def _send(self, outgoing: Outgoing, send_by: datetime) -> str:
        """The sender's answer, or a transient failure if there is none by ``send_by``: past
        it the row's lease may end before its outcome is written."""
        assert self._sender is not None
        seconds = (send_by - self._clock()).total_seconds()
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                return await self._sender.send(outgoing)
        except TimeoutError:
            # Cut off mid-conversation: whatever the sender holds open starts afresh.
            await self._sender.close()
            raise TransientSendError(f"no answer within {seconds:.1f} s") from None


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
