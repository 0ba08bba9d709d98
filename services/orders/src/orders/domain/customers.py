"""Customers' contact details: personal data, kept apart from orders and their events."""

from __future__ import annotations

import re
from dataclasses import dataclass

PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
    compact = re.sub(r"[\s\-().]", "", phone)
    if not PHONE.match(compact):
        raise ValueError("phone must be in international format, e.g. +39 06 1234 5678")
    return compact


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise ValueError("email must look like name@example.com")
    return email
