"""The message that carries a sign-in code. No infrastructure.

The orders service owns sign-in; this service only has the providers. A code is sent at once
and kept nowhere: not in ``deliveries`` (whose rows are the customers' history, shown to
managers), not in a log line, not in an error text (``without_code``).
"""

from __future__ import annotations

from notifications.domain.messages import Channel
from notifications.domain.templates import Rendered

CODE = "[code]"


def validity(seconds: int) -> str:
    """How long a code is valid, as the message says it: whole minutes, or seconds under one."""
    if seconds < 60:
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    minutes = seconds // 60
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


def code_message(channel: Channel, code: str, expires_in_seconds: int) -> Rendered:
    """The SMS (one segment) or the email that gives ``code`` to whoever asked for it."""
    valid = validity(expires_in_seconds)
    if channel is Channel.SMS:
        return Rendered(
            subject=None,
            body=f"Mario's Pizzeria: your sign-in code is {code}. It is valid for {valid}. "
            "Never share it.",
        )
    if channel is Channel.EMAIL:
        return Rendered(
            subject="Your Mario's Pizzeria sign-in code",
            body=f"Your sign-in code is {code}.\n\n"
            f"It is valid for {valid}. If you did not ask for it, ignore this email: nobody "
            "can sign in without the code.\n\nMario's Pizzeria\n",
        )
    raise ValueError(f"sign-in codes go by sms or email, not {channel.value}")


def without_code(text: str, code: str) -> str:
    """``text`` (a provider's answer, which may quote the message) without the code."""
    return text.replace(code, CODE) if code else text
