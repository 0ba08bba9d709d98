"""Customers and guests: who an order is for, their contact details shared only on the
restricted contacts topic, changes to a profile, and erasure (reads are in
``adapters.queries``).

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
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert

from contracts.catalogue import CustomerContactUpdated
from contracts.topics import CUSTOMER_CONTACTS, CUSTOMER_CONTACTS_DEAD_LETTERS
from eventing.ids import uuid7
from orders.adapters.orm import customers_table
from orders.adapters.repository import customer_from_row
from orders.domain.commands import ChangeProfile, EraseCustomer
from orders.domain.customers import (
    ContactDetails,
    ContactTaken,
    CustomerErased,
    CustomerNotFound,
    StoredCustomer,
)
from orders.domain.sign_in import Contact
from orders.service_layer.unit_of_work import OrdersDependencies, UnitOfWork

# Advisory lock namespace (two-int form) for one phone number or email address, held until
# commit by a transaction that gives it to a customer: two sign-ins with the same new phone
# make one customer, and a profile change cannot take a phone another one is being given.
# Distinct from the outbox's 0x4F42-0x4F44.
CONTACT_LOCK = 0x4355

_CONTACT_LOCK = text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:contact))")


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
    customer = customer_from_row(row)
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
        return customer_from_row(row), False
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
    return customer_from_row(created), True


async def change_profile(command: ChangeProfile, deps: OrdersDependencies) -> StoredCustomer:
    """Apply the changes to the customer's (or a guest's) details and publish them.

    Whoever issues the command decided the caller may (the customer themselves, a new phone or
    email proven, or a manager). Raises ``CustomerNotFound``, ``CustomerErased``, ``ContactTaken``
    when a new phone or email is another customer's, and ``Unreachable`` when neither would be
    left. No change stores and publishes nothing.
    """
    customer_id = command.customer_id
    async with deps.uow as uow:
        current = await _locked(uow, customer_id)
        wanted = current.profile.changed(command.changes)
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
    return customer_from_row(row)


async def erase_customer(command: EraseCustomer, deps: OrdersDependencies) -> StoredCustomer:
    """Erase the customer's (or guest's) personal data; the id stays, so their orders keep
    pointing at it.

    Empties name, phone, email and address, sets ``erased_at``, and in the same transaction
    enqueues a tombstone for the customer id on the contacts topic and on its dead-letter topic,
    so compaction removes the details published there. Orders are left as they are (they hold
    no personal data). Erasing an erased customer changes nothing and publishes nothing. Raises
    ``CustomerNotFound``.
    """
    customer_id = command.customer_id
    now = datetime.now(UTC)
    async with deps.uow as uow:
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
            return customer_from_row(row)
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
    return customer_from_row(erased)


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
    customer = customer_from_row(row)
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
