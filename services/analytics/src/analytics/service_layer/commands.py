"""Analytics takes no commands: its API only reads, and only events change its projections
(``analytics rebuild`` replays the same events: ``analytics.service_layer.rebuild``)."""

from __future__ import annotations

from typing import Any

from service_kit.commands import Command
from service_kit.handlers import CommandHandler

COMMAND_HANDLERS: dict[type[Command[Any]], CommandHandler[None]] = {}
