"""Customers signing in as a person would: ask for a code, read it from the SMS or the email
that reached the sink, trade it for a customer token."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.notifications import Sinks
from tests.support.polling import eventually

_CODE = re.compile(r"sign-in code is (\d{6})\b")


@dataclass(frozen=True)
class Person:
    """Contact details nobody else in the session uses."""

    name: str
    phone: str  # as typed, with spaces
    email: str
    address: str

    @classmethod
    def unique(cls) -> Person:
        suffix = uuid.uuid4().hex[:8]
        digits = f"{random.randrange(10**7):07d}"
        return cls(
            name=f"Carla Cliente {suffix}",
            phone=f"+39 347 {digits[:3]} {digits[3:]}",
            email=f"carla.{suffix}@example.com",
            address=f"Via dei Clienti {suffix}, Roma",
        )

    @property
    def e164(self) -> str:
        return self.phone.replace(" ", "")

    def contact(self, by: str) -> dict[str, str]:
        return {"phone": self.phone} if by == "phone" else {"email": self.email}

    def details(self) -> dict[str, str]:
        return {
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "address": self.address,
        }


def codes_received(sinks: Sinks, contact: dict[str, str]) -> list[str]:
    """Every sign-in code the sinks received for ``contact``, oldest first."""
    if "phone" in contact:
        number = contact["phone"].replace(" ", "")
        texts = [sms.body for sms in sinks.sms.delivered.values() if sms.to == number]
    else:
        address = contact["email"].lower()
        texts = [mail.body for mail in sinks.smtp.received if address in mail.recipients]
    return [match[1] for text in texts if (match := _CODE.search(text))]


async def new_code(sinks: Sinks, contact: dict[str, str], *, before: int) -> str:
    """The code that arrives for ``contact`` after the ``before`` it had already received."""
    received = await eventually(
        lambda: codes_received(sinks, contact),
        until=lambda codes: len(codes) > before,
        timeout=30,
        what=f"a sign-in code for {contact}",
    )
    code: str = received[-1]
    return code


async def ask_for_code(client: httpx.AsyncClient, sinks: Sinks, contact: dict[str, str]) -> str:
    """``POST /customers/sign-in/code``, then the code as it arrived."""
    before = len(codes_received(sinks, contact))
    asked = await client.post("/customers/sign-in/code", json=contact)
    assert asked.status_code == 202, asked.text
    return await new_code(sinks, contact, before=before)


async def sign_in(
    client: httpx.AsyncClient, sinks: Sinks, contact: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """The whole sign-in; returns the token answer (``access_token``, ``customer_id``...)."""
    code = await ask_for_code(client, sinks, contact)
    traded = await client.post("/customers/sign-in/token", json={**contact, "code": code, **extra})
    assert traded.status_code == 200, traded.text
    answer: dict[str, Any] = traded.json()
    return answer


def bearer(answer: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {answer['access_token']}"}
