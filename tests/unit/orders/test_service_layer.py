"""The orders service's two tables: every command has its one handler, named as the command is,
and the event subscriptions keep the names their inbox rows are keyed by."""

from __future__ import annotations

import inspect
import re

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from eventing.events import EventData
from orders.domain import commands
from orders.service_layer.commands import COMMAND_HANDLERS
from orders.service_layer.events import EVENT_HANDLERS
from service_kit.commands import Command


def test_the_subscription_names_stay_the_inbox_keys_they_were() -> None:
    expected: list[tuple[str, type[EventData]]] = [
        ("orders.kitchen_cooking_started", KitchenCookingStarted),
        ("orders.kitchen_order_ready", KitchenOrderReady),
    ]
    assert [(handler.name, handler.event) for handler in EVENT_HANDLERS] == expected


def test_every_command_has_one_handler_of_its_own_name() -> None:
    declared = {
        value
        for value in vars(commands).values()
        if inspect.isclass(value) and issubclass(value, Command) and value is not Command
    }
    assert set(COMMAND_HANDLERS) == declared
    # One name per concept: Depart -> depart, PickUp -> pick_up, SignIn -> sign_in.
    misnamed = {
        command.__name__: handler.__name__
        for command, handler in COMMAND_HANDLERS.items()
        if re.sub(r"(?<!^)(?=[A-Z])", "_", command.__name__).lower() != handler.__name__
    }
    assert misnamed == {}
