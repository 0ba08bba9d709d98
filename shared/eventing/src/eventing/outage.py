"""Failures of a loop that must keep going, counted every time and logged once per outage.

A relay, a consumer, a dispatcher or a timer loop that loses its database or broker tries again
and again until it works. Logging every attempt buries the one line that matters (what broke,
and when) under thousands that say nothing new; logging none hides the outage. So: the first
failure of a run is logged (with its traceback when asked), the repeats are counted in
``background_failures_total`` and logged at DEBUG, and the first success after them says how
long the outage lasted and how many attempts it took.
"""

from __future__ import annotations

import logging
import time

from eventing import metrics

__all__ = ["Outage"]


class Outage:
    """The failures of one loop (``loop`` names it in the log): counted always, logged once."""

    def __init__(self, log: logging.Logger, loop: str, *, level: int = logging.WARNING) -> None:
        self._log = log
        self._loop = loop
        self._level = level
        self._since: float | None = None  # when the current run of failures began
        self.failures_in_a_row = 0

    def failed(self, error: BaseException, *, traceback: bool = False) -> int:
        """Count ``error``; log it if it begins an outage. Returns the failures in a row."""
        metrics.BACKGROUND_FAILURES.labels(self._loop, type(error).__name__).inc()
        self.failures_in_a_row += 1
        if self._since is None:
            self._since = time.monotonic()
            self._log.log(
                self._level,
                "%s failed (%s: %s); trying again until it works",
                self._loop,
                type(error).__name__,
                error,
                exc_info=error if traceback else None,
            )
        else:
            self._log.debug("%s still failing: %s: %s", self._loop, type(error).__name__, error)
        return self.failures_in_a_row

    def recovered(self) -> None:
        """A success: ends the outage, if there was one, with one line saying how it went."""
        if self._since is not None:
            self._log.info(
                "%s working again after %d failed attempts in %.1f s",
                self._loop,
                self.failures_in_a_row,
                time.monotonic() - self._since,
            )
            self._since = None
        self.failures_in_a_row = 0
