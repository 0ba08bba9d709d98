"""Providers' answers without the customer's address or number.

An SMTP server that refuses a message names the mailbox (``550 5.1.1 <giulia@example.com>:
Recipient address rejected``); an SMS API's error body may quote the number, as typed or as
the form field it received (``'To' number +39 333 123 4567 is not valid``, ``To=%2B39...``).
Those answers are stored as the delivery's reason and logged, so they go through
``without_recipient`` first: the recipient is removed in the forms it may take, and, as a
second net, so is anything else that looks like an email address or a phone number (a
forwarding address, the number the provider reached instead).
"""

from __future__ import annotations

import re
from urllib.parse import quote

RECIPIENT = "[recipient]"
EMAIL_ADDRESS = "[email address]"
PHONE_NUMBER = "[phone number]"

# Between the digits of a number as people and providers write it.
_SEPARATORS = r"[\s\-().]*"
# An international prefix: "+", the same URL-encoded (a form echoed back), or "00".
_PREFIX = r"(?:\+|%2B|00)"

_EMAIL = re.compile(r"[A-Z0-9._%+\-]+(?:@|%40)[A-Z0-9\-]+(?:\.[A-Z0-9\-]+)*\.[A-Z]{2,}", re.I)
# A run of digits that may be a phone number; ``_looks_like_a_phone`` decides. Not inside a
# word or an id (a message sid, a hex token), not starting at an ISO date.
_NUMBER = re.compile(
    rf"(?<![\w+%]){_PREFIX}?(?!\d{{4}}-\d\d-\d\d)\(?\d[\d \t\-()]*\d\)?(?!\w)", re.I
)
_DIGITS = re.compile(r"\d")


def without_recipient(text: str, recipient: str | None) -> str:
    """``text`` (a provider's answer) without ``recipient`` (an email address or a phone
    number) and without anything else that looks like one."""
    if recipient:
        for pattern in _recipient_patterns(recipient):
            text = pattern.sub(RECIPIENT, text)
    text = _EMAIL.sub(EMAIL_ADDRESS, text)
    return _NUMBER.sub(_phone_or_kept, text)


def _recipient_patterns(recipient: str) -> list[re.Pattern[str]]:
    if "@" in recipient:
        forms = {recipient, quote(recipient, safe="")}  # as typed, and URL-encoded (%40)
        return [re.compile(re.escape(form), re.I) for form in sorted(forms, key=len, reverse=True)]
    digits = _DIGITS.findall(recipient)
    if len(digits) < 7:
        return [re.compile(re.escape(recipient), re.I)] if recipient.strip() else []
    # The whole number (after "+", "00", "%2B" or nothing), and the national number a provider
    # may show instead: the same without a country code of one to three digits, perhaps with a
    # trunk "0" in front. Any separators between the digits.
    national = [digits[cut:] for cut in (1, 2, 3) if len(digits) - cut >= 7]
    whole = _SEPARATORS.join(digits)
    shorter = "|".join(_SEPARATORS.join(part) for part in national)
    alternatives = f"{whole}|(?:0{_SEPARATORS})?(?:{shorter})" if shorter else whole
    prefix = rf"(?:{_PREFIX}{_SEPARATORS})?\(?"
    return [re.compile(rf"(?<![\d%]){prefix}(?:{alternatives})(?!\d)", re.I)]


def _phone_or_kept(match: re.Match[str]) -> str:
    return PHONE_NUMBER if _looks_like_a_phone(match[0]) else match[0]


def _looks_like_a_phone(candidate: str) -> bool:
    """7 to 15 digits (E.164) written as a number: with an international prefix, or with
    separators (``06 1234 5678``), or bare and at least 10 digits long; a shorter bare number
    is more likely a size, a count or a code than a phone."""
    digits = len(_DIGITS.findall(candidate))
    if not 7 <= digits <= 15:
        return False
    if re.match(_PREFIX, candidate, re.I):
        return True
    if re.search(r"[ \t\-()]", candidate):
        return True
    return digits >= 10
