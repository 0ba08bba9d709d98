"""Customers' contact details: personal data, kept apart from orders and their events."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
