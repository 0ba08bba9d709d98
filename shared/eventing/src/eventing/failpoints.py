"""Deliberate faults at chosen points, for fault tests that need an exact window.

Crashes are off unless ``EVENTING_FAILPOINTS`` is set, e.g. ``after_handler_commit=25``: the
process exits at once (no clean-up, like SIGKILL) the 25th time it passes that point. Errors are
armed by a test in the process (``arm_error``): the next passes through that point raise them,
as the driver call there would have.
"""

from __future__ import annotations

import os

__all__ = ["arm_error", "armed_errors", "crash_point", "disarm_errors", "error_point"]

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


_ERRORS: dict[str, list[BaseException]] = {}


def arm_error(name: str, *errors: BaseException) -> None:
    """The next ``len(errors)`` passes through ``error_point(name)`` raise these, in order."""
    _ERRORS.setdefault(name, []).extend(errors)


def disarm_errors() -> None:
    _ERRORS.clear()


def armed_errors(name: str) -> int:
    """How many errors armed at ``name`` have not been raised yet."""
    return len(_ERRORS.get(name, ()))


def error_point(name: str) -> None:
    """Raise the next error armed at this point, if any."""
    queue = _ERRORS.get(name)
    if queue:
        raise queue.pop(0)
