"""Customers: find or register the customer behind an order, share contact details only on the
restricted contacts topic, show a manager what is stored, and erase a customer's personal data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import RowMapping, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from eventing.catalogue import CustomerContactUpdated
from eventing.ids import uuid7
from eventing.topics import CUSTOMER_CONTACTS, CUSTOMER_CONTACTS_DEAD_LETTERS
from orders.adapters.orm import customers_table
from orders.domain.customers import ContactDetails
from orders.domain.model import DomainError
from orders.service_layer.unit_of_work import UnitOfWork

# Advisory lock namespace (two-int form) for one phone number or email address, held until
# commit by a transaction that registers a customer: two first orders with the same new phone
# make one customer instead of a unique violation. Distinct from the outbox's 0x4F42-0x4F44.
CONTACT_LOCK = 0x4355

_CONTACT_LOCK = text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:contact))")


class CustomerNotFound(LookupError):
    pass


class ContactConflict(DomainError):
    """The phone number and the email address belong to two different customers."""


@dataclass(frozen=True)
class StoredCustomer:
    """What the orders database holds about a customer (the details are None once erased)."""

    id: str
    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    sms_opt_in: bool
    email_opt_in: bool
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None

    @property
    def erased(self) -> bool:
        return self.erased_at is not None


async def register_customer(uow: UnitOfWork, details: ContactDetails) -> str:
    """The pseudonymous id of the customer with this phone or email, created when new.

    Contact details that changed are stored and published on the contacts topic (never on the
    orders topic). Raises ``ContactConflict`` when the phone belongs to one customer and the
    email to another. Call inside ``async with uow``.
    """
    now = datetime.now(UTC)
    contacts = {
        column: value
        for column, value in (
            (customers_table.c.phone, details.phone),
            (customers_table.c.email, details.email),
        )
        if value is not None
    }
    # In a fixed order, so two transactions locking the same phone and email cannot deadlock.
    for contact in sorted(f"{column.name}:{value}" for column, value in contacts.items()):
        await uow.session.execute(_CONTACT_LOCK, {"namespace": CONTACT_LOCK, "contact": contact})
    rows = []
    if contacts:
        rows = list(
            (
                await uow.session.execute(
                    select(customers_table)
                    .where(or_(*(column == value for column, value in contacts.items())))
                    .order_by(customers_table.c.created_at, customers_table.c.id)
                    .with_for_update()
                )
            )
            .mappings()
            .all()
        )
    if len(rows) > 1:
        # Merging them would silently hand one customer's orders to another; a person decides.
        raise ContactConflict(
            "this phone number and this email address belong to two different customers; "
            "use the phone number or the email address you ordered with before"
        )
    row = rows[0] if rows else None
    values = {
        "name": details.name,
        "phone": details.phone,
        "email": details.email,
        "address": details.address,
        "sms_opt_in": details.sms_opt_in,
        "email_opt_in": details.email_opt_in,
    }
    if row is None:
        customer_id = str(uuid7())
        await uow.session.execute(
            insert(customers_table).values(id=customer_id, updated_at=now, **values)
        )
    else:
        customer_id = str(row["id"])
        if all(row[key] == value for key, value in values.items()):
            return customer_id
        await uow.session.execute(
            update(customers_table)
            .where(customers_table.c.id == customer_id)
            .values(updated_at=now, **values)
        )
    uow.emit(
        CustomerContactUpdated(customer_id=customer_id, updated_at=now, **values),
        aggregate_id=customer_id,
    )
    return customer_id


async def get_customer(uow: UnitOfWork, customer_id: str) -> StoredCustomer:
    """Everything stored about the customer, e.g. to answer a subject-access request."""
    async with uow:
        row = (
            (
                await uow.session.execute(
                    select(customers_table).where(customers_table.c.id == customer_id)
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise CustomerNotFound(customer_id)
    return _stored(row)


async def erase_customer(uow: UnitOfWork, customer_id: str) -> StoredCustomer:
    """Erase the customer's personal data; the id stays, so their orders keep pointing at it.

    Empties name, phone, email and address, sets ``erased_at``, and in the same transaction
    enqueues a tombstone for the customer id on the contacts topic and on its dead-letter topic,
    so compaction removes the details published there. Orders are left as they are (they hold
    no personal data). Erasing an erased customer changes nothing and publishes nothing. Raises
    ``CustomerNotFound``.
    """
    now = datetime.now(UTC)
    async with uow:
        row = (
            (
                await uow.session.execute(
                    select(customers_table)
                    .where(customers_table.c.id == customer_id)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise CustomerNotFound(customer_id)
        if row["erased_at"] is not None:
            return _stored(row)
        erased = (
            (
                await uow.session.execute(
                    update(customers_table)
                    .where(customers_table.c.id == customer_id)
                    .values(
                        name=None,
                        phone=None,
                        email=None,
                        address=None,
                        updated_at=now,
                        erased_at=now,
                    )
                    .returning(*customers_table.c)
                )
            )
            .mappings()
            .one()
        )
        # Compaction removes the details from the contacts topic and from its dead letters.
        for topic in (CUSTOMER_CONTACTS, CUSTOMER_CONTACTS_DEAD_LETTERS):
            await uow.outbox.enqueue_tombstone(
                uow.session, topic, customer_id, aggregate_type=CustomerContactUpdated.aggregate
            )
        await uow.commit()
    return _stored(erased)


def _stored(row: RowMapping) -> StoredCustomer:
    return StoredCustomer(
        id=str(row["id"]),
        name=row["name"],
        phone=row["phone"],
        email=row["email"],
        address=row["address"],
        sms_opt_in=row["sms_opt_in"],
        email_opt_in=row["email_opt_in"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        erased_at=row["erased_at"],
    )
