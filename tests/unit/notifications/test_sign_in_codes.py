"""The message that carries a sign-in code, and what is left of a provider's answer about it."""

from __future__ import annotations

import pytest

from notifications.domain.messages import Channel
from notifications.domain.privacy import without_recipient
from notifications.domain.sign_in_codes import CODE, code_message, validity, without_code


def test_the_sms_is_one_segment_and_carries_the_code_and_its_validity() -> None:
    sms = code_message(Channel.SMS, "042917", 600)
    assert sms.subject is None
    assert "042917" in sms.body and "10 minutes" in sms.body
    assert len(sms.body) <= 160


def test_the_email_keeps_the_code_out_of_its_subject() -> None:
    email = code_message(Channel.EMAIL, "042917", 60)
    assert email.subject and "042917" not in email.subject
    assert "042917" in email.body and "1 minute." in email.body


def test_in_app_messages_carry_no_code() -> None:
    with pytest.raises(ValueError, match="sms or email"):
        code_message(Channel.IN_APP, "042917", 600)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(1, "1 second"), (45, "45 seconds"), (60, "1 minute"), (600, "10 minutes"), (119, "1 minute")],
)
def test_validity_in_words(seconds: int, said: str) -> None:
    assert validity(seconds) == said


def test_a_providers_answer_loses_the_code_and_the_recipient() -> None:
    answer = "HTTP 400: cannot deliver 'your sign-in code is 042917' to +39 347 123 4567"
    cleaned = without_code(without_recipient(answer, "+393471234567"), "042917")
    assert "042917" not in cleaned and "4567" not in cleaned
    assert CODE in cleaned
