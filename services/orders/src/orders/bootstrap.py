"""The composition root of the orders service: the one place that builds its dependencies."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta

from contracts.topics import KITCHEN, TOPOLOGY
from eventing.outbox import Outbox
from orders.adapters.notifications import CodeSender, HttpCodeSender
from orders.domain.sign_in import SignInPolicy
from orders.service_layer.commands import COMMAND_HANDLERS
from orders.service_layer.events import EVENT_HANDLERS
from orders.service_layer.unit_of_work import OrdersDependencies, UnitOfWork
from orders.settings import OrdersConsumerSettings, OrdersSettings
from service_kit.auth import AuthSettings
from service_kit.handlers import CommandBus, subscriptions
from service_kit.limits import RateLimit, RateSpec
from service_kit.service import ConsumingService

SOURCE = "/mariospizzeria/orders"


def _unlimited() -> RateLimit:
    return RateLimit(RateSpec(0, 1))


@dataclass
class SignInSetup:
    """What the sign-in endpoints need: the code rules, where codes go, the token's life and
    the limits; ``unavailable`` says why sign-in is off, when it is."""

    policy: SignInPolicy
    sender: CodeSender | None
    token_ttl_seconds: int
    unavailable: str | None
    codes_per_contact: RateLimit = field(default_factory=_unlimited)
    codes_per_client: RateLimit = field(default_factory=_unlimited)
    attempts_per_client: RateLimit = field(default_factory=_unlimited)


@dataclass
class OrdersService(ConsumingService):
    """The orders API's database, kitchen-event consumer, token verifier and outbox, and the
    command bus its routes send their commands to."""

    outbox: Outbox | None = None
    placements_per_client: RateLimit = field(default_factory=_unlimited)
    placements_per_contact: RateLimit = field(default_factory=_unlimited)
    sign_in: SignInSetup | None = None
    commands: CommandBus[OrdersDependencies] = field(init=False)

    def __post_init__(self) -> None:
        self.commands = CommandBus(COMMAND_HANDLERS, self.dependencies)

    def dependencies(self) -> OrdersDependencies:
        """What one command's handler is given: a unit of work of its own, and sign-in's."""
        assert self.outbox is not None
        assert self.sign_in is not None
        return OrdersDependencies(
            UnitOfWork(self.sessions, self.outbox), self.sign_in.policy, self.sign_in.sender
        )


def sign_in_of(settings: OrdersSettings, auth: AuthSettings) -> SignInSetup:
    if settings.sign_in_code_secret is not None:
        secret = settings.sign_in_code_secret.get_secret_value().encode()
    else:
        # A key of its own, derived: whoever holds the JWT secret can sign in as anyone anyway.
        master = auth.jwt_secret.get_secret_value().encode()
        secret = hmac.new(master, b"mariospizzeria orders sign-in codes", hashlib.sha256).digest()
    unavailable = None
    sender = None
    if auth.uses_jwks:
        unavailable = (
            "customers sign in with the identity provider: with AUTH_JWKS_URL set, this "
            "service cannot issue tokens"
        )
    elif settings.notifications_url is None or settings.notifications_token is None:
        unavailable = (
            "sign-in is not set up: ORDERS_NOTIFICATIONS_URL and ORDERS_NOTIFICATIONS_TOKEN are "
            "needed to send codes"
        )
    else:
        sender = HttpCodeSender(
            settings.notifications_url,
            settings.notifications_token.get_secret_value(),
            timeout_seconds=settings.notifications_timeout_seconds,
        )
    return SignInSetup(
        policy=SignInPolicy(
            secret=secret,
            code_ttl=timedelta(seconds=settings.sign_in_code_ttl_seconds),
            max_attempts=settings.sign_in_code_max_attempts,
        ),
        sender=sender,
        token_ttl_seconds=settings.customer_token_ttl_seconds,
        unavailable=unavailable,
        codes_per_contact=RateLimit(settings.sign_in_codes_per_contact),
        codes_per_client=RateLimit(settings.sign_in_codes_per_client),
        attempts_per_client=RateLimit(settings.sign_in_attempts_per_client),
    )


def bootstrap(settings: OrdersSettings | None = None) -> OrdersService:
    settings = settings or OrdersSettings()
    outbox = Outbox(SOURCE)
    service = OrdersService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[KITCHEN.name],
        topology=TOPOLOGY,
        subscriptions=subscriptions(EVENT_HANDLERS, outbox),
        consumer_settings=OrdersConsumerSettings(),
        outbox=outbox,
        placements_per_client=RateLimit(settings.placements_per_client),
        placements_per_contact=RateLimit(settings.placements_per_contact),
    )
    service.sign_in = sign_in_of(settings, service.token_verifier.settings)
    return service
