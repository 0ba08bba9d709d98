"""Customers and guests: who an order is for, their contact details shared only on the
restricted contacts topic, a customer's own profile, a manager's view, and erasure.

Two kinds of row hold contact details (``customers``):

* a **customer**: someone who signed in with a code sent to their phone or email (so they
  receive its messages); at most one per phone number and per email address, found by them;
* a **guest** snapshot: the details an order placed without signing in came with, under a new
  pseudonymous id of its own. No lookup by phone or email ever finds one, so an anonymous order
  can neither change a customer's details nor learn who has a phone number.

Both are published the same way on the contacts topic, keyed by their id, and erased by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, select, text, update
from sqlalchemy.dialects.postgresql import insert

from contracts.catalogue import CustomerContactUpdated
from contracts.topics import CUSTOMER_CONTACTS, CUSTOMER_CONTACTS_DEAD_LETTERS
from eventing.ids import uuid7
from orders.adapters.orm import customers_table
from orders.domain.customers import ContactDetails, Profile
from orders.domain.sign_in import Contact
from orders.service_layer.unit_of_work import UnitOfWork

# Advisory lock namespace (two-int form) for one phone number or email address, held until
# commit by a transaction that gives it to a customer: two sign-ins with the same new phone
# make one customer, and a profile change cannot take a phone another one is being given.
# Distinct from the outbox's 0x4F42-0x4F44.
CONTACT_LOCK = 0x4355

_CONTACT_LOCK = text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:contact))")


class CustomerNotFound(LookupError):
    pass


class CustomerErased(LookupError):
    """The customer's personal data was erased: nothing of them may be used any more."""

    def __init__(self, customer_id: str, erased_at: datetime) -> None:
        super().__init__(customer_id)
        self.erased_at = erased_at


class ContactTaken(Exception):
    """The phone number or email address is another customer's (whose, it does not say)."""

    def __init__(self, field: str) -> None:
        what = "phone number" if field == "phone" else "email address"
        super().__init__(f"this {what} belongs to another customer")
        self.field = field


@dataclass(frozen=True)
class StoredCustomer:
    """What the orders database holds about a customer or a guest (the details are None once
    erased; a customer's name is None until they give one)."""

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
    guest: bool

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    @property
    def profile(self) -> Profile:
        return Profile(
            name=self.name,
            phone=self.phone,
            email=self.email,
            address=self.address,
            sms_opt_in=self.sms_opt_in,
            email_opt_in=self.email_opt_in,
        )


async def record_guest(uow: UnitOfWork, details: ContactDetails) -> str:
    """A new guest snapshot of ``details``, published on the contacts topic; returns its id.

    Nothing is looked up: the snapshot is this order's alone. Call inside ``async with uow``.
    """
    guest_id = str(uuid7())
    now = datetime.now(UTC)
    values = _details(asdict(details))
    await uow.session.execute(
        insert(customers_table).values(id=guest_id, guest=True, updated_at=now, **values)
    )
    _publish(uow, guest_id, values, now)
    return guest_id


async def signed_in_customer(uow: UnitOfWork, customer_id: str) -> StoredCustomer:
    """The customer a customer token names, to place an order with their stored details.

    Raises ``CustomerNotFound`` (also for a guest id: no customer token names one) and
    ``CustomerErased``. Call inside ``async with uow``.
    """
    row = (
        (
            await uow.session.execute(
                select(customers_table).where(
                    customers_table.c.id == customer_id, customers_table.c.guest.is_(False)
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise CustomerNotFound(customer_id)
    customer = _stored(row)
    if customer.erased_at is not None:
        raise CustomerErased(customer_id, customer.erased_at)
    return customer


async def customer_with(
    uow: UnitOfWork, contact: Contact, *, name: str | None = None
) -> tuple[StoredCustomer, bool]:
    """The customer with this phone number or email address, made when there is none (whoever
    proved they receive its messages signs up with it); returns it and whether it is new.

    ``name`` is the new customer's; an existing customer's stays as it is. Guests are never
    found. Call inside ``async with uow`` after the contact was proven.
    """
    await _lock_contacts(uow, [(contact.kind.value, contact.value)])
    column = customers_table.c[contact.kind.value]
    row = (
        (
            await uow.session.execute(
                select(customers_table)
                .where(column == contact.value, customers_table.c.guest.is_(False))
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is not None:
        return _stored(row), False
    customer_id = str(uuid7())
    now = datetime.now(UTC)
    values = _details({"name": name, contact.kind.value: contact.value})
    created = (
        (
            await uow.session.execute(
                insert(customers_table)
                .values(id=customer_id, guest=False, updated_at=now, **values)
                .returning(*customers_table.c)
            )
        )
        .mappings()
        .one()
    )
    _publish(uow, customer_id, values, now)
    return _stored(created), True


async def change_profile(
    uow: UnitOfWork, customer_id: str, changes: Mapping[str, object]
) -> StoredCustomer:
    """Apply ``changes`` to the customer's (or a guest's) details and publish them.

    Whoever calls this decided the caller may (the customer themselves, a new phone or email
    proven, or a manager). Raises ``CustomerNotFound``, ``CustomerErased``, ``ContactTaken``
    when a new phone or email is another customer's, and ``Unreachable`` when neither would be
    left. No change stores and publishes nothing.
    """
    async with uow:
        current = await _locked(uow, customer_id)
        wanted = current.profile.changed(changes)
        if not current.guest:
            fresh = wanted.new_contacts(current.profile)
            await _lock_contacts(uow, fresh)
            for field, value in fresh:
                taken = await uow.session.scalar(
                    select(customers_table.c.id).where(
                        customers_table.c[field] == value,
                        customers_table.c.guest.is_(False),
                        customers_table.c.id != customer_id,
                    )
                )
                if taken is not None:
                    raise ContactTaken(field)
        if wanted == current.profile:
            return current
        now = datetime.now(UTC)
        values = _details(asdict(wanted))
        row = (
            (
                await uow.session.execute(
                    update(customers_table)
                    .where(customers_table.c.id == customer_id)
                    .values(updated_at=now, **values)
                    .returning(*customers_table.c)
                )
            )
            .mappings()
            .one()
        )
        _publish(uow, customer_id, values, now)
        await uow.commit()
    return _stored(row)


async def get_customer(uow: UnitOfWork, customer_id: str) -> StoredCustomer:
    """Everything stored about the customer or guest, e.g. to answer a subject-access request."""
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
    """Erase the customer's (or guest's) personal data; the id stays, so their orders keep
    pointing at it.

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


async def _locked(uow: UnitOfWork, customer_id: str) -> StoredCustomer:
    row = (
        (
            await uow.session.execute(
                select(customers_table).where(customers_table.c.id == customer_id).with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise CustomerNotFound(customer_id)
    customer = _stored(row)
    if customer.erased_at is not None:
        raise CustomerErased(customer_id, customer.erased_at)
    return customer


async def _lock_contacts(uow: UnitOfWork, contacts: Iterable[tuple[str, str]]) -> None:
    # In a fixed order, so two transactions locking the same phone and email cannot deadlock.
    for contact in sorted(f"{field}:{value}" for field, value in contacts):
        await uow.session.execute(_CONTACT_LOCK, {"namespace": CONTACT_LOCK, "contact": contact})


def _details(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns of a profile or contact snapshot (opt-ins default to yes)."""
    return {
        "name": fields.get("name"),
        "phone": fields.get("phone"),
        "email": fields.get("email"),
        "address": fields.get("address"),
        "sms_opt_in": fields.get("sms_opt_in", True),
        "email_opt_in": fields.get("email_opt_in", True),
    }


def _publish(uow: UnitOfWork, customer_id: str, values: Mapping[str, Any], now: datetime) -> None:
    # A customer who has not given a name yet is greeted without one.
    uow.emit(
        CustomerContactUpdated(
            customer_id=customer_id, updated_at=now, **{**values, "name": values["name"] or ""}
        ),
        aggregate_id=customer_id,
    )


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
        guest=row["guest"],
    )
