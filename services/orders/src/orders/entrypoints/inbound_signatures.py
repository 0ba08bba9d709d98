"""The signature of inbound CloudEvents (``POST /cloudevents``): the one definition of its form.

A sender signs each request with the shared secret ``ORDERS_INBOUND_HMAC_SECRET``::

    X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>...]

The HMAC-SHA256, keyed with the secret's UTF-8 bytes, is taken over the canonical bytes::

    v1:<t>:<n>:<id>:<n>:<source>:<n>:<type>:<body>

* ``<t>`` is the header's ``t`` exactly as sent (1 to 12 decimal digits, the Unix time in
  seconds when the request was signed);
* each ``<n>`` is the length in bytes of the UTF-8 encoding of the field after it, in decimal
  without leading zeros; the fields are the event's ``id``, ``source`` and ``type`` attributes
  (structured mode: the string values in the JSON body; binary mode: the ``ce-id``,
  ``ce-source`` and ``ce-type`` headers after percent-decoding), an empty string when absent;
* ``<body>`` is the raw request body, byte for byte.

Fields are length-prefixed rather than split on a separator because no character can be
refused in them: a source is a URI, full of ``:``, and an id may be anything. The body comes
last and needs no length. Signing the id and source binds the signature to the key the event is
de-duplicated by, so a captured request replayed under a fresh ``ce-id`` no longer verifies; the
timestamp bounds how long a captured request is worth replaying at all.

Several ``v1`` values may be sent (one per secret, while the secret is rotated); the request is
admitted when any of them matches. Items with another key (a future ``v2``) are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

SCHEME = "v1"
TIMESTAMP_KEY = "t"
# 12 digits last until the year 33658; the bound keeps int() and the arithmetic trivial.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
EXPECTED_FORM = "t=<unix seconds>,v1=<hex HMAC-SHA256>"
# The scheme before v1: the HMAC of the body alone, so nothing bound it to the event's id or to
# a time. Refused unless ORDERS_INBOUND_ACCEPT_BODY_ONLY_SIGNATURE is set, for one release.
BODY_ONLY_PREFIX = "sha256="


class SignatureRefused(Exception):
    """The request's signature does not admit it; ``str()`` is the reason for the sender."""


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: str  # the digits as sent: they are what was signed
    signatures: tuple[str, ...]  # lower-case hex

    @property
    def seconds(self) -> int:
        return int(self.timestamp)


def _field(value: str) -> bytes:
    # surrogatepass: a JSON body may carry a lone surrogate ("\ud800"); such an event is refused
    # later as unstorable, and its signature must not crash on the way there.
    encoded = value.encode("utf-8", "surrogatepass")
    return str(len(encoded)).encode("ascii") + b":" + encoded + b":"


def canonical(
    timestamp: int | str, event_id: str, source: str, event_type: str, body: bytes
) -> bytes:
    """The bytes the HMAC covers (see the module's documentation)."""
    stamp = str(timestamp)
    if not _TIMESTAMP.fullmatch(stamp):
        raise ValueError(f"the timestamp must be 1 to 12 decimal digits, not {stamp!r}")
    return (
        f"{SCHEME}:{stamp}:".encode("ascii")
        + _field(event_id)
        + _field(source)
        + _field(event_type)
        + body
    )


def digest(
    secret: str, timestamp: int | str, event_id: str, source: str, event_type: str, body: bytes
) -> str:
    """The hex HMAC-SHA256 of the canonical bytes under ``secret``."""
    message = canonical(timestamp, event_id, source, event_type, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(
    secret: str | Iterable[str],
    timestamp: int | str,
    event_id: str,
    source: str,
    event_type: str,
    body: bytes,
) -> str:
    """The ``X-Signature`` value for a request; several secrets give one ``v1`` each."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("at least one secret is needed")
    values = [digest(key, timestamp, event_id, source, event_type, body) for key in secrets]
    return ",".join([f"{TIMESTAMP_KEY}={timestamp}", *(f"{SCHEME}={value}" for value in values)])


def parse(header: str) -> SignatureHeader:
    """The header's timestamp and ``v1`` signatures; ``SignatureRefused`` when malformed."""
    timestamp: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, equals, value = item.strip().partition("=")
        if not equals or not key:
            raise _malformed(f"{item.strip()!r} is not key=value")
        if key == TIMESTAMP_KEY:
            if timestamp is not None:
                raise _malformed("t= is repeated")
            if not _TIMESTAMP.fullmatch(value):
                raise _malformed("t= must be the Unix time in seconds (1 to 12 digits)")
            timestamp = value
        elif key == SCHEME:
            if not _HEX_DIGEST.fullmatch(value):
                raise _malformed("v1= must be 64 hex digits (HMAC-SHA256)")
            signatures.append(value.lower())
    if timestamp is None:
        raise _malformed("no t=")
    if not signatures:
        raise _malformed("no v1=")
    return SignatureHeader(timestamp, tuple(signatures))


def verify(
    header: str,
    secret: str,
    event_id: str,
    source: str,
    event_type: str,
    body: bytes,
    *,
    now: float,
    tolerance_seconds: float,
) -> SignatureHeader:
    """Admit the request or raise ``SignatureRefused`` with the reason.

    The signature is checked before the timestamp, so the tolerance is reported only to a
    sender who holds the secret: it is their clock (or a replay) that is off, not their key.
    """
    parsed = parse(header)
    expected = digest(secret, parsed.timestamp, event_id, source, event_type, body).encode()
    # Every value is compared, in constant time each: which of them matched reveals nothing.
    matched = False
    for given in parsed.signatures:
        matched |= hmac.compare_digest(given.encode(), expected)
    if not matched:
        raise SignatureRefused(
            "the signature does not match (v1 = HMAC-SHA256 of "
            "v1:<t>:<n>:<id>:<n>:<source>:<n>:<type>:<body>)"
        )
    if abs(now - parsed.seconds) > tolerance_seconds:
        raise SignatureRefused(
            f"signature timestamp outside the tolerance window (±{tolerance_seconds:g} s of "
            "the receiver's clock): sign each request when it is sent"
        )
    return parsed


def body_only_matches(header: str, secret: str, body: bytes) -> bool:
    """Whether ``header`` is the deprecated ``sha256=<hex>`` HMAC of the body alone."""
    given = header.strip()
    if not given.startswith(BODY_ONLY_PREFIX):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given[len(BODY_ONLY_PREFIX) :].lower().encode(), expected.encode())


def is_body_only(header: str) -> bool:
    return header.strip().startswith(BODY_ONLY_PREFIX)


def _malformed(what: str) -> SignatureRefused:
    return SignatureRefused(f"malformed X-Signature ({what}); expected {EXPECTED_FORM}")
