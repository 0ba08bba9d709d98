"""Types for what clients send: text PostgreSQL can store, ids, RFC 3339 times.

Each constraint is in the type's JSON Schema (``pattern``, ``maxLength``, ``format``), so the
OpenAPI document tells clients and contract testers exactly what is accepted, and a value that
breaks it is a 422 with the field's name, never a database error and a 500.

* ``SingleLine``: one line of text, no control characters (PostgreSQL refuses NUL in ``text``; the
  others have no business in a name, a pizza or a topping). A lone surrogate (``"\\ud800"``
  in JSON) is no Unicode text either: pydantic refuses it before the pattern is tried.
* ``MultiLine``: the same but line breaks and tabs are allowed (a cancel reason, a note).
* ``Label``: a name that is a key (a pizza, a topping): one line, no space at either end.
* ``Identifier``: the ids of our resources (UUIDs, customer ids, event ids): letters, digits and
  ``._:-``, bounded.
* ``Rfc3339``: a date-time string with its UTC offset. Numbers (which pydantic would read as
  Unix timestamps) and times without an offset are refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints, WithJsonSchema

# C0 controls, DEL and C1 controls.
_NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]*$"
_NO_CONTROLS_BUT_BREAKS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_EDGE = r"[^\s\x00-\x1f\x7f-\x9f]"
_TRIMMED = rf"^{_EDGE}(?:[^\x00-\x1f\x7f-\x9f]*{_EDGE})?$"
IDENTIFIER_PATTERN = r"^[A-Za-z0-9._:-]+$"
MAX_IDENTIFIER_LENGTH = 100
IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
# The largest id a BIGINT column holds; a bigger one in a path is a 422, not a database error.
MAX_DATABASE_ID = 2**63 - 1


# Markers for ``Annotated[str, SingleLine, Field(max_length=...)]``: the length is the field's own.
SingleLine = StringConstraints(min_length=1, pattern=_NO_CONTROLS)
# A name that is a key (a pizza, a topping): one line, no space at either end.
Label = StringConstraints(min_length=1, pattern=_TRIMMED)
LABEL_PATTERN = _TRIMMED
MultiLine = StringConstraints(min_length=1, pattern=_NO_CONTROLS_BUT_BREAKS)


# Path parameters take these keyword arguments from ``fastapi.Path`` instead of ``Field``.
IDENTIFIER_CONSTRAINTS: dict[str, Any] = {
    "min_length": 1,
    "max_length": MAX_IDENTIFIER_LENGTH,
    "pattern": IDENTIFIER_PATTERN,
}

# RFC 3339 §5.6 date-time, which requires the offset (``Z`` or ``±hh:mm``).
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with its UTC offset")
    return value


def _in_utc(value: datetime) -> datetime:
    # A time near year 1 or 9999 with an offset can fall outside what datetime holds in UTC.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (
            datetime.min.replace(tzinfo=UTC)
            if value.year < 5000
            else datetime.max.replace(tzinfo=UTC)
        )


Rfc3339 = Annotated[
    datetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_in_utc),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
