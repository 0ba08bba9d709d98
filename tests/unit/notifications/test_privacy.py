"""Providers' answers are stored and logged without the recipient's address or number."""

from __future__ import annotations

import aiosmtplib
import pytest

from notifications.domain.privacy import (
    EMAIL_ADDRESS,
    PHONE_NUMBER,
    RECIPIENT,
    without_recipient,
)

EMAIL = "giulia.rossi@example.com"
PHONE = "+393331234567"


def smtp_refusal(code: int, message: str, recipient: str) -> str:
    """What the SMTP sender makes of a refused recipient (aiosmtplib's own text)."""
    refused = aiosmtplib.SMTPRecipientRefused(code, message, recipient)
    return f"recipient refused: {aiosmtplib.SMTPRecipientsRefused([refused])}"


EMAIL_ANSWERS = {
    "refused, the address as the server spells it": smtp_refusal(
        550,
        "5.1.1 <Giulia.Rossi@Example.COM>: Recipient address rejected: User unknown",
        EMAIL,
    ),
    "mailbox full": "SMTP 552: 5.2.2 <giulia.rossi@example.com>: mailbox full",
    "greylisted": smtp_refusal(
        450, "4.2.0 <giulia.rossi@example.com>: Recipient address rejected: Greylisted", EMAIL
    ),
    "an API echoing its form": "HTTP 400: invalid field to=giulia.rossi%40example.com",
}
SMS_ANSWERS = {
    "Twilio 21211, as typed": (
        'HTTP 400: {"code": 21211, "message": "Invalid \'To\' Phone Number: +39 333 123 4567",'
        ' "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}'
    ),
    "without the plus": (
        'HTTP 400: {"code": 21614, "message": "\'To\' number 393331234567 is not a valid'
        ' mobile number"}'
    ),
    "with dashes": "HTTP 422: destination 39-333-123-4567 is barred",
    "the national number": "HTTP 400: number 333 1234567 not reachable on this route",
    "the form field echoed": "HTTP 400: bad request To=%2B393331234567&From=%2B15005550006",
    "with 00": "HTTP 403: 00393331234567 is on the do-not-contact list",
}


@pytest.mark.parametrize("answer", EMAIL_ANSWERS)
def test_an_smtp_or_api_answer_loses_the_email_address_in_any_case(answer: str) -> None:
    cleaned = without_recipient(EMAIL_ANSWERS[answer], EMAIL)
    assert "giulia" not in cleaned.lower()
    assert RECIPIENT in cleaned


@pytest.mark.parametrize("answer", SMS_ANSWERS)
def test_an_sms_api_answer_loses_the_number_in_any_form(answer: str) -> None:
    cleaned = without_recipient(SMS_ANSWERS[answer], PHONE)
    assert "1234567" not in cleaned.replace(" ", "").replace("-", "")
    assert "4567" not in cleaned
    assert RECIPIENT in cleaned


def test_what_the_provider_says_about_the_failure_stays() -> None:
    cleaned = without_recipient(EMAIL_ANSWERS["mailbox full"], EMAIL)
    assert cleaned == f"SMTP 552: 5.2.2 <{RECIPIENT}>: mailbox full"
    cleaned = without_recipient(SMS_ANSWERS["Twilio 21211, as typed"], PHONE)
    assert cleaned == (
        f'HTTP 400: {{"code": 21211, "message": "Invalid \'To\' Phone Number: {RECIPIENT}",'
        ' "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}'
    )
    cleaned = without_recipient(SMS_ANSWERS["the national number"], PHONE)
    assert cleaned == f"HTTP 400: number {RECIPIENT} not reachable on this route"


def test_a_landline_in_brackets_goes_whole() -> None:
    answer = "HTTP 400: (06) 1234-5678 is a landline and cannot receive SMS"
    cleaned = without_recipient(answer, "+390612345678")
    assert cleaned == f"HTTP 400: {RECIPIENT} is a landline and cannot receive SMS"


def test_other_addresses_and_numbers_go_too() -> None:
    """The second net: whoever else the provider names is someone's personal data as well."""
    answer = (
        "550 5.1.6 mailbox moved; forwarded to Marco.Verdi@example.org, call +44 20 7946 0958"
        " or 06 1234 5678, or 3471234567"
    )
    cleaned = without_recipient(answer, EMAIL)
    assert cleaned == (
        f"550 5.1.6 mailbox moved; forwarded to {EMAIL_ADDRESS}, call {PHONE_NUMBER}"
        f" or {PHONE_NUMBER}, or {PHONE_NUMBER}"
    )
    assert without_recipient(answer, None) == cleaned


@pytest.mark.parametrize(
    "answer",
    [
        "SMTP 421: 4.7.0 Try again later, closing connection",
        'HTTP 503: {"message": "service unavailable"}',
        "SMTP 552: 5.3.4 Message size exceeds fixed limit of 10485760 bytes",
        "HTTP 429: rate limited until 2026-12-01 10:00:00 UTC, retry in 300 s",
        'HTTP 409: {"sid": "SM0123456789abcdef0123456789abcdef", "code": 20409}',
        "ConnectError: [Errno 111] Connection refused (192.168.100.200:8025)",
        "TimeoutError: no answer in 10.0 s",
    ],
)
def test_answers_without_personal_data_are_left_as_they_are(answer: str) -> None:
    assert without_recipient(answer, EMAIL) == answer
    assert without_recipient(answer, PHONE) == answer
