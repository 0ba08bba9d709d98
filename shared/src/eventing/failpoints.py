"""Deliberate crashes at chosen points, for fault tests that need an exact window.

Off unless ``EVENTING_FAILPOINTS`` is set, e.g. ``after_handler_commit=25``: the process exits
at once (no clean-up, like SIGKILL) the 25th time it passes that point.
"""

from __future__ import annotations

import os

_COUNTS: dict[str, int] = {}


def _configured() -> dict[str, int]:
    spec = os.environ.get("EVENTING_FAILPOINTS", "")
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        points[name] = int(count or "1")
    return points


_ARMED = _configured()


def crash_point(name: str) -> None:
    """Exit the process here if this failpoint is armed and its count is reached."""
    if name not in _ARMED:
        return
    _COUNTS[name] = _COUNTS.get(name, 0) + 1
    if _COUNTS[name] >= _ARMED[name]:
        os._exit(137)
