"""Signing in with a one-time code sent to a phone or an email address. No infrastructure.

Whoever can read the messages of a phone number or an email address may act as the customer
with it: the orders service sends a code there (through the notifications service) and trades
the code, presented back, for a customer token. Proving control of a contact nobody has yet is
how a customer comes to exist.

The rules:

* a code is ``CODE_DIGITS`` random digits (``secrets``), one per contact at a time: asking again
  replaces the previous one;
* only a keyed hash of it is kept (HMAC-SHA256 under the service's secret, bound to the contact,
  so a code sent to one contact is no code for another), compared in constant time;
* it is good once, until it expires, and for ``max_attempts`` tries: the last wrong try kills it.

The contact itself is not kept either, only its keyed hash (``contact_key``): asking for a code
leaves no personal data behind.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

CODE_DIGITS: Final = 6
CODE_PATTERN: Final = rf"^[0-9]{{{CODE_DIGITS}}}$"
_CODE = re.compile(CODE_PATTERN)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SignInPolicy:
    secret: bytes  # the key of the codes' and contacts' hashes
    code_ttl: timedelta
    max_attempts: int
    clock: Callable[[], datetime] = utc_now


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


@dataclass(frozen=True)
class Contact:
    """A phone number (E.164) or an email address (lower case), already normalised."""

    kind: ContactKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.value}"


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def is_code(text: str) -> bool:
    return _CODE.fullmatch(text) is not None


def contact_key(secret: bytes, contact: Contact) -> str:
    """What the codes table is keyed by: the contact's keyed hash, never the contact."""
    return hmac.new(secret, f"contact\x00{contact}".encode(), hashlib.sha256).hexdigest()


def code_digest(secret: bytes, contact: Contact, code: str) -> str:
    """The keyed hash of ``code`` for ``contact``: what is stored and compared."""
    return hmac.new(secret, f"code\x00{contact}\x00{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    """A code sent to a contact, as kept: its digest, its life, how it was used."""

    digest: str
    issued_at: datetime
    expires_at: datetime
    attempts: int = 0
    used_at: datetime | None = None

    @classmethod
    def issue(cls, digest: str, *, now: datetime, ttl: timedelta) -> IssuedCode:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if ttl <= timedelta(0):
            raise ValueError("a code must live for some time")
        return cls(digest=digest, issued_at=now, expires_at=now + ttl)


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"  # the code does not match; ``attempts_left`` says how many tries remain
    EXPIRED = "expired"
    SPENT = "spent"  # too many wrong tries: the code is dead
    NO_CODE = "no code"  # none asked for, or it was used already (the caller can't tell which)


@dataclass(frozen=True)
class Check:
    """What presenting a code did: the verdict, and the code as it must be kept afterwards."""

    verdict: Verdict
    code: IssuedCode | None
    attempts_left: int = 0

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED


def check_code(
    issued: IssuedCode | None, presented_digest: str, *, now: datetime, max_attempts: int
) -> Check:
    """Judge a presented code (by its digest) against the one issued to the same contact.

    An expired, used or dead code is refused without counting a try, and says so; a wrong code
    counts one, and the try that reaches ``max_attempts`` kills the code (the right code is
    refused from then on). The right code is accepted once, and is used from then on.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if issued is None or issued.used_at is not None:
        return Check(Verdict.NO_CODE, issued)
    if now >= issued.expires_at:
        return Check(Verdict.EXPIRED, issued)
    if issued.attempts >= max_attempts:
        return Check(Verdict.SPENT, issued)
    if hmac.compare_digest(issued.digest, presented_digest):
        return Check(Verdict.ACCEPTED, replace(issued, used_at=now))
    tried = replace(issued, attempts=issued.attempts + 1)
    return Check(Verdict.WRONG, tried, attempts_left=max_attempts - tried.attempts)


def refusal(check: Check) -> str:
    """Why the code was refused, for the caller: what happened and what to do next."""
    again = "ask for a new one with POST /customers/sign-in/code"
    if check.verdict is Verdict.WRONG:
        if check.attempts_left == 0:
            return f"the code is wrong, and that was its last try: {again}"
        tries = "try" if check.attempts_left == 1 else "tries"
        return f"the code is wrong; {check.attempts_left} {tries} left"
    if check.verdict is Verdict.EXPIRED:
        return f"the code expired: {again}"
    if check.verdict is Verdict.SPENT:
        return f"too many wrong codes: this one is no longer valid, {again}"
    if check.verdict is Verdict.NO_CODE:
        return f"no code is waiting for this phone number or email (used, or none sent): {again}"
    raise ValueError(f"{check.verdict} is no refusal")
