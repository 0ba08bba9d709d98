"""The inbound CloudEvents signature: its canonical form, and what verifying admits and refuses."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from orders.entrypoints.inbound_signatures import (
    SignatureRefused,
    body_only_matches,
    canonical,
    parse,
    sign,
    verify,
)

SECRET = "example-inbound-secret-0123456789abcdef"
OTHER = "another-secret-0123456789abcdef"
T = 1718000000
ID = "pay-1"
SOURCE = "https://payments.example.com/webhooks"
TYPE = "com.mariospizzeria.payment.succeeded.v1"
BODY = b'{"order_id":"ord-1","amount":"12.99"}'
# The test vector of services/orders/README.md, computed with openssl
# (printf '%s' "$CANONICAL" | openssl dgst -sha256 -hmac "$SECRET"), not with the code under test.
VECTOR = "f320af4ba53bf1d62b412d5ec9ca835e0e07653b8e8d8ebeeceea72a21cf2739"


def check(
    header: str,
    *,
    now: float = T,
    secret: str = SECRET,
    event_id: str = ID,
    source: str = SOURCE,
    event_type: str = TYPE,
    body: bytes = BODY,
) -> None:
    verify(header, secret, event_id, source, event_type, body, now=now, tolerance_seconds=300)


def test_the_canonical_form_and_the_test_vector() -> None:
    assert canonical(T, ID, SOURCE, TYPE, BODY) == (
        b"v1:1718000000:5:pay-1:37:https://payments.example.com/webhooks:"
        b"39:com.mariospizzeria.payment.succeeded.v1:" + BODY
    )
    assert sign(SECRET, T, ID, SOURCE, TYPE, BODY) == f"t={T},v1={VECTOR}"


def test_lengths_count_utf8_bytes_and_absent_fields_are_empty() -> None:
    assert canonical(T, "é", "", "", b"") == "v1:1718000000:2:é:0::0::".encode()


def test_no_two_events_share_a_canonical_form() -> None:
    # Each pair would collide under a plain "id:source:type:body" join.
    pairs = [
        (("a:1", "b", "t", b"x"), ("a", "1:b", "t", b"x")),
        (("a", "b:t", "", b"x"), ("a", "b", "t:", b"x")),
        (("a", "b", "t", b"1:x"), ("a", "b", "t:1", b"x")),
        (("1:a", "b", "t", b""), ("", "a:1:b", "t", b"")),
    ]
    for left, right in pairs:
        assert canonical(T, *left) != canonical(T, *right), (left, right)


def test_a_signed_request_verifies_and_returns_what_it_carried() -> None:
    header = sign(SECRET, T, ID, SOURCE, TYPE, BODY)
    parsed = verify(header, SECRET, ID, SOURCE, TYPE, BODY, now=T + 5, tolerance_seconds=300)
    assert parsed.seconds == T
    assert parsed.signatures == (VECTOR,)


@pytest.mark.parametrize(
    "change",
    [
        {"event_id": "pay-2"},  # a replay under a new id
        {"source": "https://elsewhere.example.com"},
        {"event_type": "com.example.other.v1"},
        {"body": BODY.replace(b"12.99", b"0.01")},
        {"secret": OTHER},
    ],
)
def test_anything_changed_after_signing_does_not_match(change: dict[str, Any]) -> None:
    with pytest.raises(SignatureRefused, match="does not match"):
        check(sign(SECRET, T, ID, SOURCE, TYPE, BODY), **change)


def test_a_changed_timestamp_does_not_match() -> None:
    header = sign(SECRET, T, ID, SOURCE, TYPE, BODY).replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(SignatureRefused, match="does not match"):
        check(header, now=T + 1)


def test_the_tolerance_window_either_way() -> None:
    header = sign(SECRET, T, ID, SOURCE, TYPE, BODY)
    check(header, now=T + 300)
    check(header, now=T - 300)
    for now in (T + 301, T - 301, T + 86400):
        with pytest.raises(SignatureRefused, match="outside the tolerance window"):
            check(header, now=now)


def test_a_stale_signature_made_with_another_key_says_it_does_not_match() -> None:
    # Only the holder of the secret learns that its clock is off.
    with pytest.raises(SignatureRefused, match="does not match"):
        check(sign(OTHER, T - 3600, ID, SOURCE, TYPE, BODY))


def test_any_of_several_signatures_admits_for_rotation() -> None:
    header = sign([OTHER, SECRET], T, ID, SOURCE, TYPE, BODY)
    assert header.count(",v1=") == 2
    check(header)
    check(header, secret=OTHER)
    with pytest.raises(SignatureRefused, match="does not match"):
        check(header, secret="a-third-secret-0123456789abcdef")


def test_the_header_tolerates_spacing_case_and_unknown_schemes() -> None:
    check(f" v2=whatever , t={T} ,  v1={VECTOR.upper()} ")
    # t= is signed as written, leading zeros and all
    padded = "00" + str(T)
    check(f"t={padded},v1={sign(SECRET, padded, ID, SOURCE, TYPE, BODY)[-64:]}")


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("", "is not key=value"),
        ("garbage", "is not key=value"),
        (f"t={T},,v1={VECTOR}", "is not key=value"),
        (f"={T},v1={VECTOR}", "is not key=value"),
        (f"v1={VECTOR}", "no t="),
        (f"t={T}", "no v1="),
        (f"t={T},v2={VECTOR}", "no v1="),
        (f"t={T},t={T},v1={VECTOR}", "t= is repeated"),
        (f"t=,v1={VECTOR}", "Unix time in seconds"),
        (f"t=-{T},v1={VECTOR}", "Unix time in seconds"),
        (f"t=1.7e9,v1={VECTOR}", "Unix time in seconds"),
        (f"t={T}.5,v1={VECTOR}", "Unix time in seconds"),
        (f"t={'9' * 13},v1={VECTOR}", "Unix time in seconds"),
        (f"t=١٧١٨٠٠٠٠٠٠,v1={VECTOR}", "Unix time in seconds"),  # Arabic-Indic digits
        (f"t={T},v1=zz", "64 hex digits"),
        (f"t={T},v1={VECTOR[:-1]}", "64 hex digits"),
        (f"t={T},v1={VECTOR},v1=", "64 hex digits"),
        (f"t={T}, v1=sha256={VECTOR}", "64 hex digits"),
    ],
)
def test_malformed_headers_are_refused_saying_what_is_wrong(header: str, why: str) -> None:
    with pytest.raises(SignatureRefused, match="malformed X-Signature") as refused:
        parse(header)
    assert why in str(refused.value)
    assert "expected t=<unix seconds>,v1=<hex HMAC-SHA256>" in str(refused.value)


def test_signing_refuses_what_cannot_be_a_timestamp_or_no_secret() -> None:
    with pytest.raises(ValueError, match="1 to 12 decimal digits"):
        sign(SECRET, -1, ID, SOURCE, TYPE, BODY)
    with pytest.raises(ValueError, match="at least one secret"):
        sign([], T, ID, SOURCE, TYPE, BODY)


def test_a_lone_surrogate_in_a_field_is_signed_without_crashing() -> None:
    # A JSON body can carry "\ud800"; the event is refused later, as unstorable.
    header = sign(SECRET, T, "\ud800", SOURCE, TYPE, BODY)
    check(header, event_id="\ud800")
    with pytest.raises(SignatureRefused):
        check(header, event_id="\ufffd")


def test_the_deprecated_body_only_signature() -> None:
    body_only = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert body_only_matches(body_only, SECRET, BODY)
    assert body_only_matches(body_only.upper().replace("SHA256=", "sha256="), SECRET, BODY)
    assert not body_only_matches(body_only, OTHER, BODY)
    assert not body_only_matches(body_only, SECRET, BODY + b" ")
    assert not body_only_matches(body_only.removeprefix("sha256="), SECRET, BODY)
    assert not body_only_matches(sign(SECRET, T, ID, SOURCE, TYPE, BODY), SECRET, BODY)
