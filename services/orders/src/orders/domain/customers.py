"""Customers' contact details: personal data, kept apart from orders and their events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What clients may send (the API's documented patterns): E.164 written with spaces, dashes, dots
# or brackets between the digits; an email with spaces around it. No control characters.
_SEPARATORS = r"[ ().-]*"
PHONE_INPUT = re.compile(
    rf"^{_SEPARATORS}\+{_SEPARATORS}[1-9](?:{_SEPARATORS}[0-9]){{6,14}}{_SEPARATORS}$"
)
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f-\x9f]"
EMAIL_INPUT = re.compile(rf"^ *{_EMAIL_CHAR}+@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+ *$")


@dataclass(frozen=True)
class ContactDetails:
    name: str
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    sms_opt_in: bool = True
    email_opt_in: bool = True


def normalise_phone(phone: str) -> str:
    """Spaces, dashes and brackets removed; the result must be E.164 (+ and 7-15 digits)."""
    compact = re.sub(r"[ \-().]", "", phone)
    if not PHONE_INPUT.match(phone) or not PHONE.match(compact):
        raise ValueError("phone must be in international format, e.g. +39 06 1234 5678")
    return compact


def normalise_email(email: str) -> str:
    if not EMAIL_INPUT.match(email):
        raise ValueError("email must look like name@example.com")
    email = email.strip(" ").lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise ValueError("email must look like name@example.com")
    return email


# ------------------------------------------------------------------------------ profiles
# A guest order carries a snapshot of these details, stored under an id of its own that no
# phone or email lookup ever finds; a customer (someone who signed in with a code) has one
# profile, which only they or a manager change.
PROFILE_FIELDS = frozenset({"name", "phone", "email", "address", "sms_opt_in", "email_opt_in"})


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


class Unreachable(ValueError):
    """A change would leave the customer with neither a phone number nor an email address."""


@dataclass(frozen=True)
class Profile:
    """A customer's details as they choose them (``name`` is None until they give one)."""

    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    sms_opt_in: bool = True
    email_opt_in: bool = True

    def changed(self, changes: Mapping[str, object]) -> Profile:
        """This profile with ``changes`` (field -> new value) applied.

        Raises ``ValueError`` for a field that is not one of the profile's and ``Unreachable``
        when neither a phone number nor an email address would be left.
        """
        unknown = set(changes) - PROFILE_FIELDS
        if unknown:
            raise ValueError(f"not fields of a profile: {', '.join(sorted(unknown))}")
        updated = replace(self, **changes)  # type: ignore[arg-type]
        if updated.phone is None and updated.email is None:
            raise Unreachable("keep a phone number or an email address, so we can reach you")
        return updated

    def new_contacts(self, before: Profile) -> list[tuple[str, str]]:
        """The phone number and email address this profile has and ``before`` had not, as
        (field, value): the ones whose owner must prove they receive its messages."""
        return [
            (field, value)
            for field, value in (("phone", self.phone), ("email", self.email))
            if value is not None and value != getattr(before, field)
        ]


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
