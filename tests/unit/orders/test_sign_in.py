"""The rules of sign-in codes and of customers' profiles (orders.domain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.customers import Profile, Unreachable
from orders.domain.sign_in import (
    CODE_DIGITS,
    Check,
    Contact,
    ContactKind,
    IssuedCode,
    Verdict,
    check_code,
    code_digest,
    contact_key,
    is_code,
    new_code,
    refusal,
)

SECRET = b"k" * 32
NOW = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)
TTL = timedelta(minutes=10)
PHONE = Contact(ContactKind.PHONE, "+390612345678")
EMAIL = Contact(ContactKind.EMAIL, "giulia@example.com")


def issued(code: str = "123456", contact: Contact = PHONE, **changes: object) -> IssuedCode:
    fresh = IssuedCode.issue(code_digest(SECRET, contact, code), now=NOW, ttl=TTL)
    return IssuedCode(**{**fresh.__dict__, **changes})


def present(code: IssuedCode | None, text: str, *, at: datetime = NOW, tries: int = 5) -> Check:
    return check_code(code, code_digest(SECRET, PHONE, text), now=at, max_attempts=tries)


def test_a_code_is_six_random_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(is_code(code) and len(code) == CODE_DIGITS for code in codes)
    assert len(codes) > 190  # random, not a sequence or a constant
    assert not is_code("12345") and not is_code("1234567") and not is_code("12a456")


def test_what_is_kept_is_a_keyed_hash_bound_to_the_contact() -> None:
    digest = code_digest(SECRET, PHONE, "123456")
    assert "123456" not in digest and len(digest) == 64
    assert digest != code_digest(SECRET, EMAIL, "123456")  # another contact's is another
    assert digest != code_digest(b"x" * 32, PHONE, "123456")  # another key's too
    key = contact_key(SECRET, PHONE)
    assert PHONE.value not in key and key != contact_key(SECRET, EMAIL)


def test_the_right_code_is_accepted_once() -> None:
    check = present(issued(), "123456")
    assert check.verdict is Verdict.ACCEPTED and check.accepted
    assert check.code is not None and check.code.used_at == NOW
    again = present(check.code, "123456", at=NOW + timedelta(seconds=1))
    assert again.verdict is Verdict.NO_CODE
    assert again.code == check.code  # refusing changes nothing


def test_no_code_at_all_is_refused_like_a_used_one() -> None:
    assert present(None, "123456").verdict is Verdict.NO_CODE
    assert refusal(present(None, "123456")) == refusal(present(issued(used_at=NOW), "123456"))


def test_a_code_expires() -> None:
    code = issued()
    assert present(code, "123456", at=NOW + TTL - timedelta(microseconds=1)).accepted
    expired = present(code, "123456", at=NOW + TTL)
    assert expired.verdict is Verdict.EXPIRED
    assert expired.code == code  # an expired try counts nothing
    assert "expired" in refusal(expired)


def test_each_wrong_try_counts_and_the_last_one_kills_the_code() -> None:
    code: IssuedCode | None = issued()
    lefts = []
    for _ in range(3):
        check = present(code, "654321", tries=3)
        assert check.verdict is Verdict.WRONG
        lefts.append(check.attempts_left)
        code = check.code
    assert lefts == [2, 1, 0]
    assert "last try" in refusal(check)
    dead = present(code, "123456", tries=3)
    assert dead.verdict is Verdict.SPENT and not dead.accepted
    assert "no longer valid" in refusal(dead)


def test_a_wrong_try_after_expiry_or_use_counts_nothing() -> None:
    used = issued(used_at=NOW)
    assert present(used, "000000").code == used
    code = issued()
    assert present(code, "000000", at=NOW + TTL).code == code


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)])
def test_a_code_must_live(ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="live"):
        IssuedCode.issue("d", now=NOW, ttl=ttl)
    with pytest.raises(ValueError, match="timezone"):
        IssuedCode.issue("d", now=NOW.replace(tzinfo=None), ttl=TTL)


def test_a_profile_keeps_a_way_to_reach_the_customer() -> None:
    profile = Profile(name="Giulia", phone="+390612345678", email=None, address=None)
    assert profile.changed({"email": "g@example.com", "phone": None}).email == "g@example.com"
    with pytest.raises(Unreachable):
        profile.changed({"phone": None})
    with pytest.raises(ValueError, match="not fields"):
        profile.changed({"id": "someone-else"})


def test_only_new_contacts_need_proof() -> None:
    before = Profile(name="Giulia", phone="+390612345678", email="g@example.com", address=None)
    assert before.changed({"address": "Via Roma 1"}).new_contacts(before) == []
    assert before.changed({"phone": "+390612345678"}).new_contacts(before) == []
    assert before.changed({"email": None}).new_contacts(before) == []
    changed = before.changed({"phone": "+390699999999", "email": "n@example.com"})
    assert changed.new_contacts(before) == [("phone", "+390699999999"), ("email", "n@example.com")]
