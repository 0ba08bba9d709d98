"""What the service layer writes, and reads to decide what to write: deliveries, in-app
messages, contacts and erasure marks, orders and late timers (``orm.py`` describes the tables;
the API's reads are in ``queries.py``).

A repository works in one transaction, which its caller owns (the consumer's, with its inbox
row, or a unit of work's). Where two writers may race, the rule is one statement, so that it
holds under concurrency: a repeated delivery or message is ignored, an older contact record
does not replace a newer one, a cancelled or fired timer is not re-armed.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from sqlalchemy import RowMapping, delete, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eventing.deadletter import forget_dead_letters
from eventing.metrics import after_commit
from notifications.adapters.doorbell import Doorbell
from notifications.adapters.orm import (
    contacts_table,
    deliveries_table,
    erased_customers_table,
    late_timers_table,
    messages_table,
    orders_table,
)
from notifications.domain.messages import (
    Channel,
    Contact,
    Delivery,
    DeliveryStatus,
    DueTimer,
    Kind,
    Message,
    NewDelivery,
    TimerStatus,
    utc_now,
)

# Advisory lock namespace (two-int form) for one customer id, held until commit by the contact
# and tombstone handlers: a contact record applied while the customer's tombstone is being
# applied elsewhere (a consumer that lost its partition and does not know yet) waits for it,
# then sees the erasure mark.
CUSTOMER_LOCK = 0x4E43
_CUSTOMER_LOCK = text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:customer_id))")


class AbstractRepository(abc.ABC):
    """The service's writes, in the caller's transaction."""

    @abc.abstractmethod
    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` (count a metric) once the transaction commits; never if it rolls back."""

    # ------------------------------------------------------------------ customers and contacts
    @abc.abstractmethod
    async def lock_customer(self, customer_id: str) -> None:
        """Hold the customer's lock until the transaction ends."""

    @abc.abstractmethod
    async def is_erased(self, customer_id: str) -> bool: ...

    @abc.abstractmethod
    async def mark_erased(self, customer_id: str) -> None:
        """Remember that the customer was erased (once)."""

    @abc.abstractmethod
    async def contact(self, customer_id: str) -> Contact | None: ...

    @abc.abstractmethod
    async def save_contact(self, contact: Contact, updated_at: datetime) -> None:
        """Store the contact unless the one stored was updated later than ``updated_at``."""

    @abc.abstractmethod
    async def delete_contact(self, customer_id: str) -> None: ...

    @abc.abstractmethod
    async def forget_dead_letters(self, topic: str, key: str) -> None:
        """Delete the unpublished dead letters of ``key`` from ``topic``: they hold its value."""

    # ------------------------------------------------------------------ orders
    @abc.abstractmethod
    async def customer_of(self, order_id: str) -> str | None:
        """The order's customer, or None if no event of the order said yet."""

    @abc.abstractmethod
    async def remember_order(
        self,
        order_id: str,
        customer_id: str,
        fulfilment: str,
        tracking_token_sha256: str | None,
    ) -> None:
        """Store who ordered and how it is fulfilled; a ``tracking_token_sha256`` of None
        keeps the hash stored before."""

    @abc.abstractmethod
    async def set_estimate(self, order_id: str, estimated_ready_at: datetime) -> None:
        """The kitchen's latest estimate of a known order (an unknown order is left alone)."""

    # ------------------------------------------------------------------ deliveries
    @abc.abstractmethod
    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[Channel]:
        """Record the deliveries; one whose (event, channel) is recorded already is ignored.
        Returns the channels of those recorded now."""

    @abc.abstractmethod
    async def assign_customer(self, order_id: str, customer_id: str) -> None:
        """Give the order's deliveries recorded before its customer was known their customer."""

    @abc.abstractmethod
    async def skip_pending(
        self, customer_id: str, channels: Iterable[Channel], reason: str
    ) -> None:
        """Skip the customer's pending deliveries on ``channels``, with ``reason``."""

    @abc.abstractmethod
    async def erase_contents(self, customer_id: str, channels: Iterable[Channel]) -> None:
        """Forget where the customer's deliveries on ``channels`` went and what they said."""

    # ------------------------------------------------------------------ in-app messages
    @abc.abstractmethod
    async def add_message(
        self,
        *,
        event_id: str,
        order_id: str,
        customer_id: str,
        channel: Channel,
        kind: Kind,
        body: str,
    ) -> None:
        """Write the message; a second one of the same (event, channel) is ignored."""

    @abc.abstractmethod
    async def message(self, customer_id: str, message_id: int) -> Message | None:
        """The customer's message, held by this transaction until it ends."""

    @abc.abstractmethod
    async def save_message(self, message: Message) -> None:
        """Store when the message was read and dismissed."""

    # ------------------------------------------------------------------ late timers
    @abc.abstractmethod
    async def arm_timer(
        self, order_id: str, due_at: datetime, estimated_ready_at: datetime
    ) -> None:
        """Arm or move the order's late timer; a cancelled or fired timer stays as it is."""

    @abc.abstractmethod
    async def cancel_timer(self, order_id: str, now: datetime) -> None:
        """Cancel the order's armed timer, or record one cancelled if none was armed yet; a
        fired timer stays fired."""

    @abc.abstractmethod
    async def due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        """The armed timers due by ``now``, oldest first, that no other transaction holds,
        held by this one until it ends."""

    @abc.abstractmethod
    async def fire_timer(self, order_id: str, now: datetime) -> None: ...


D = deliveries_table.c
M = messages_table.c
T = late_timers_table.c


class SqlAlchemyRepository(AbstractRepository):
    def __init__(self, session: AsyncSession, doorbell: Doorbell | None = None) -> None:
        """``doorbell`` is rung once deliveries this session queued have committed."""
        self._session = session
        self._doorbell = doorbell

    def after_commit(self, action: Callable[[], None]) -> None:
        after_commit(self._session, action)

    # ------------------------------------------------------------------ customers and contacts
    async def lock_customer(self, customer_id: str) -> None:
        await self._session.execute(
            _CUSTOMER_LOCK, {"namespace": CUSTOMER_LOCK, "customer_id": customer_id}
        )

    async def is_erased(self, customer_id: str) -> bool:
        erased = await self._session.scalar(
            select(exists().where(erased_customers_table.c.customer_id == customer_id))
        )
        return bool(erased)

    async def mark_erased(self, customer_id: str) -> None:
        await self._session.execute(
            insert(erased_customers_table).values(customer_id=customer_id).on_conflict_do_nothing()
        )

    async def contact(self, customer_id: str) -> Contact | None:
        statement = select(contacts_table).where(contacts_table.c.customer_id == customer_id)
        row = (await self._session.execute(statement)).mappings().first()
        return None if row is None else contact_from_row(row)

    async def save_contact(self, contact: Contact, updated_at: datetime) -> None:
        values = {
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "email_opt_in": contact.email_opt_in,
            "sms_opt_in": contact.sms_opt_in,
            "updated_at": updated_at,
        }
        await self._session.execute(
            insert(contacts_table)
            .values(customer_id=contact.customer_id, **values)
            .on_conflict_do_update(
                index_elements=[contacts_table.c.customer_id],
                set_=values,
                where=contacts_table.c.updated_at <= updated_at,
            )
        )

    async def delete_contact(self, customer_id: str) -> None:
        await self._session.execute(
            delete(contacts_table).where(contacts_table.c.customer_id == customer_id)
        )

    async def forget_dead_letters(self, topic: str, key: str) -> None:
        await forget_dead_letters(self._session, topic, key)

    # ------------------------------------------------------------------ orders
    async def customer_of(self, order_id: str) -> str | None:
        found: str | None = await self._session.scalar(
            select(orders_table.c.customer_id).where(orders_table.c.order_id == order_id)
        )
        return found

    async def remember_order(
        self,
        order_id: str,
        customer_id: str,
        fulfilment: str,
        tracking_token_sha256: str | None,
    ) -> None:
        statement = insert(orders_table).values(
            order_id=order_id,
            customer_id=customer_id,
            fulfilment=fulfilment,
            tracking_token_sha256=tracking_token_sha256,
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[orders_table.c.order_id],
                set_={
                    "customer_id": customer_id,
                    "fulfilment": fulfilment,
                    "tracking_token_sha256": func.coalesce(
                        statement.excluded.tracking_token_sha256,
                        orders_table.c.tracking_token_sha256,
                    ),
                    "updated_at": utc_now(),
                },
            )
        )

    async def set_estimate(self, order_id: str, estimated_ready_at: datetime) -> None:
        await self._session.execute(
            update(orders_table)
            .where(orders_table.c.order_id == order_id)
            .values(estimated_ready_at=estimated_ready_at)
        )

    # ------------------------------------------------------------------ deliveries
    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[Channel]:
        written = await self._session.execute(
            insert(deliveries_table)
            .values(
                [
                    {
                        "event_id": delivery.event_id,
                        "channel": delivery.channel.value,
                        "order_id": delivery.order_id,
                        "customer_id": delivery.customer_id,
                        "kind": delivery.kind.value,
                        "params": delivery.params,
                        "status": DeliveryStatus.PENDING.value,
                        "next_attempt_at": delivery.next_attempt_at,
                        "wait_until": delivery.wait_until,
                        "idempotency_key": delivery.idempotency_key,
                    }
                    for delivery in deliveries
                ]
            )
            .on_conflict_do_nothing(constraint="deliveries_once_per_event_and_channel")
            .returning(D.channel)
        )
        channels = [Channel(row[0]) for row in written]
        if channels and self._doorbell is not None:
            doorbell = self._doorbell
            self.after_commit(lambda: doorbell.ring(channels))
        return channels

    async def assign_customer(self, order_id: str, customer_id: str) -> None:
        await self._session.execute(
            update(deliveries_table)
            .where(D.order_id == order_id, D.customer_id.is_(None))
            .values(customer_id=customer_id)
        )

    async def skip_pending(
        self, customer_id: str, channels: Iterable[Channel], reason: str
    ) -> None:
        await self._session.execute(
            update(deliveries_table)
            .where(D.customer_id == customer_id, D.status == DeliveryStatus.PENDING.value)
            .where(D.channel.in_([channel.value for channel in channels]))
            .values(status=DeliveryStatus.SKIPPED.value, reason=reason, updated_at=utc_now())
        )

    async def erase_contents(self, customer_id: str, channels: Iterable[Channel]) -> None:
        await self._session.execute(
            update(deliveries_table)
            .where(D.customer_id == customer_id)
            .where(D.channel.in_([channel.value for channel in channels]))
            .values(recipient=None, subject=None, body=None)
        )

    # ------------------------------------------------------------------ in-app messages
    async def add_message(
        self,
        *,
        event_id: str,
        order_id: str,
        customer_id: str,
        channel: Channel,
        kind: Kind,
        body: str,
    ) -> None:
        await self._session.execute(
            insert(messages_table)
            .values(
                order_id=order_id,
                customer_id=customer_id,
                channel=channel.value,
                kind=kind.value,
                body=body,
                event_id=event_id,
            )
            .on_conflict_do_nothing()
        )

    async def message(self, customer_id: str, message_id: int) -> Message | None:
        statement = (
            select(messages_table)
            .where(M.id == message_id, M.customer_id == customer_id)
            .with_for_update()
        )
        row = (await self._session.execute(statement)).mappings().first()
        return None if row is None else message_from_row(row)

    async def save_message(self, message: Message) -> None:
        await self._session.execute(
            update(messages_table)
            .where(M.id == message.id)
            .values(read_at=message.read_at, dismissed_at=message.dismissed_at)
        )

    # ------------------------------------------------------------------ late timers
    async def arm_timer(
        self, order_id: str, due_at: datetime, estimated_ready_at: datetime
    ) -> None:
        statement = insert(late_timers_table).values(
            order_id=order_id,
            due_at=due_at,
            estimated_ready_at=estimated_ready_at,
            status=TimerStatus.ARMED.value,
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[T.order_id],
                set_={
                    "due_at": due_at,
                    "estimated_ready_at": estimated_ready_at,
                    "updated_at": utc_now(),
                },
                where=T.status == TimerStatus.ARMED.value,
            )
        )

    async def cancel_timer(self, order_id: str, now: datetime) -> None:
        statement = insert(late_timers_table).values(
            order_id=order_id,
            due_at=now,
            estimated_ready_at=now,
            status=TimerStatus.CANCELLED.value,
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[T.order_id],
                set_={"status": TimerStatus.CANCELLED.value, "updated_at": utc_now()},
                where=T.status == TimerStatus.ARMED.value,
            )
        )

    async def due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        rows = await self._session.execute(
            select(T.order_id, T.estimated_ready_at)
            .where(T.status == TimerStatus.ARMED.value, T.due_at <= now)
            .order_by(T.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [DueTimer(order_id, estimated_ready_at) for order_id, estimated_ready_at in rows]

    async def fire_timer(self, order_id: str, now: datetime) -> None:
        await self._session.execute(
            update(late_timers_table)
            .where(T.order_id == order_id)
            .values(status=TimerStatus.FIRED.value, updated_at=now)
        )


def contact_from_row(row: RowMapping, prefix: str = "") -> Contact:
    return Contact(
        customer_id=row[f"{prefix}customer_id"],
        name=row[f"{prefix}name"],
        email=row[f"{prefix}email"],
        phone=row[f"{prefix}phone"],
        email_opt_in=row[f"{prefix}email_opt_in"],
        sms_opt_in=row[f"{prefix}sms_opt_in"],
    )


def delivery_from_row(row: RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        event_id=row["event_id"],
        channel=Channel(row["channel"]),
        order_id=row["order_id"],
        customer_id=row["customer_id"],
        kind=Kind(row["kind"]),
        params=dict(row["params"]),
        status=DeliveryStatus(row["status"]),
        reason=row["reason"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        wait_until=row["wait_until"],
        idempotency_key=row["idempotency_key"],
        recipient=row["recipient"],
        subject=row["subject"],
        body=row["body"],
        provider_id=row["provider_id"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )


def message_from_row(row: RowMapping) -> Message:
    return Message(
        id=row["id"],
        order_id=row["order_id"],
        customer_id=row["customer_id"],
        channel=Channel(row["channel"]),
        kind=Kind(row["kind"]),
        body=row["body"],
        created_at=row["created_at"],
        read_at=row["read_at"],
        dismissed_at=row["dismissed_at"],
    )
