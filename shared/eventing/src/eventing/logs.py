"""Logging for services: JSON lines by default, human-readable text for ``make run``."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from opentelemetry import trace

__all__ = ["JsonFormatter", "RepeatsFilter", "TraceContextFilter", "configure_logging"]

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex) to records logged while a span is active."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = f"{context.trace_id:032x}"
            record.span_id = f"{context.span_id:016x}"
        return True


class RepeatsFilter(logging.Filter):
    """Lets a library's message through once per ``window`` seconds, not once per attempt.

    aiokafka logs "Unable connect to node" at ERROR on every reconnection attempt, several a
    second for as long as the broker is away: an outage of a minute buried the one line that
    says when it began. Messages are told apart by logger and format string (not by their
    arguments, which differ in addresses and counts); the next one let through says how many
    like it were held back.
    """

    def __init__(self, prefix: str, window: float = 60.0) -> None:
        super().__init__()
        self._prefix = prefix
        self._window = window
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # -> (let through at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefix):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        since, held = self._last.get(key, (float("-inf"), 0))
        if now - since < self._window:
            self._last[key] = (since, held + 1)
            return False
        self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} (and {held} like it in the last {now - since:.0f} s)"
        return True


def configure_logging(service: str, level: str = "INFO", *, fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
        )
    handler.addFilter(TraceContextFilter())
    handler.addFilter(RepeatsFilter("aiokafka"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
