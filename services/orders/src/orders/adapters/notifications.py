"""Sign-in codes go out through the notifications service, which has the SMS and email
providers: ``POST <ORDERS_NOTIFICATIONS_URL>/sign-in-codes`` with the shared bearer token.

Not through Kafka: a code must not be stored anywhere in clear, and a topic keeps its records.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from orders.domain.sign_in import Contact


class CodeNotSent(Exception):
    """The code could not be handed over for delivery. ``retriable``: asking again may work."""

    def __init__(self, reason: str, *, retriable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retriable = retriable


class CodeSender(Protocol):
    async def send(self, contact: Contact, code: str, expires_in_seconds: int) -> None:
        """Send ``code`` to ``contact`` by SMS or email; raises ``CodeNotSent``."""
        ...


class HttpCodeSender:
    """One short-lived HTTP connection per code: sign-ins are rare, and nothing stays open."""

    def __init__(self, base_url: str, token: str, *, timeout_seconds: float) -> None:
        self._url = base_url.rstrip("/") + "/sign-in-codes"
        self._token = token
        self._timeout = timeout_seconds

    async def send(self, contact: Contact, code: str, expires_in_seconds: int) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(
                    self._url,
                    json={
                        contact.kind.value: contact.value,
                        "code": code,
                        "expires_in_seconds": expires_in_seconds,
                    },
                    headers={"Authorization": f"Bearer {self._token}"},
                )
        except httpx.HTTPError as error:
            raise CodeNotSent(
                f"the notifications service is unreachable ({type(error).__name__})",
                retriable=True,
            ) from None  # its text may quote the request
        if response.is_success:
            return
        if response.status_code == 422:
            # The provider refused this recipient for good (not a mobile number, no mailbox).
            raise CodeNotSent("the provider refused the recipient", retriable=False)
        if response.status_code == 401:
            raise CodeNotSent(
                "the notifications service refused our token "
                "(ORDERS_NOTIFICATIONS_TOKEN and NOTIFICATIONS_SIGN_IN_TOKEN must be the same)",
                retriable=True,
            )
        raise CodeNotSent(
            f"the notifications service answered {response.status_code}", retriable=True
        )
