"""Message templates, one file per kind and channel: ``<kind>.<channel>.txt``.

Email templates start with a ``Subject:`` line and a blank line. Variables are
``string.Template`` placeholders (``$short_id``, ``${name}``); a missing variable is a bug and
raises ``KeyError``. ``$name`` is only given to email and SMS (in-app messages carry no personal
data).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from notifications.domain.messages import Channel, Kind


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


@cache
def _template(kind: Kind, channel: Channel) -> tuple[Template | None, Template]:
    text = (resources.files(__package__) / f"{kind.value}.{channel.value}.txt").read_text("utf-8")
    if channel is Channel.EMAIL:
        first, _, rest = text.partition("\n")
        if not first.startswith("Subject:"):
            raise ValueError(f"{kind.value}.email.txt must start with a Subject: line")
        return Template(first.removeprefix("Subject:").strip()), Template(rest.lstrip("\n"))
    return None, Template(text)


def render(kind: Kind, channel: Channel, variables: dict[str, str]) -> Rendered:
    subject, body = _template(kind, channel)
    return Rendered(
        subject=subject.substitute(variables) if subject is not None else None,
        body=body.substitute(variables).strip() + ("\n" if channel is Channel.EMAIL else ""),
    )
