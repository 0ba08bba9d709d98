"""The composition root of the notifications service: the one place that builds its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import CUSTOMER_CONTACTS, CUSTOMER_CONTACTS_DEAD_LETTERS, TOPOLOGY
from eventing.database import create_engine, session_factory
from notifications.adapters.delivery_queue import AsyncpgDeliveryQueue
from notifications.adapters.doorbell import Doorbell
from notifications.adapters.providers import HttpSmsSender, SmtpEmailSender
from notifications.adapters.repository import SqlAlchemyRepository
from notifications.domain.messages import Channel, Policy
from notifications.service_layer.commands import COMMAND_HANDLERS, CommandDependencies
from notifications.service_layer.dispatch import Dispatcher, RetryPolicy
from notifications.service_layer.events import (
    EVENT_HANDLERS,
    TOMBSTONE_HANDLERS,
    EventDependencies,
)
from notifications.service_layer.sign_in_codes import CodeMessenger
from notifications.service_layer.timers import LateTimers
from notifications.service_layer.unit_of_work import SqlAlchemyUnitOfWork
from notifications.settings import NotificationsConsumerSettings, NotificationsSettings
from service_kit.handlers import CommandBus, subscriptions, tombstone_subscriptions
from service_kit.service import ConsumingService


@dataclass(kw_only=True)
class NotificationsService(ConsumingService):
    """The consumer and database, plus one dispatcher per channel and the late timers.

    The dispatchers have a connection each and the timers a pool of their own
    (``worker_engine``): a flood of API requests can take every API connection, and must not stop
    messages from going out."""

    worker_engine: AsyncEngine
    dispatchers: list[Dispatcher]
    timers: LateTimers
    poll_seconds: float = 0.5
    # Sign-in codes for the orders service, sent at once with senders of their own.
    code_messenger: CodeMessenger = field(default_factory=lambda: CodeMessenger({}))
    sign_in_token: SecretStr | None = None
    commands: CommandBus[CommandDependencies] = field(init=False)

    def __post_init__(self) -> None:
        # The API's commands run in its own pool, a unit of work each.
        self.commands = CommandBus(
            COMMAND_HANDLERS,
            lambda: CommandDependencies(SqlAlchemyUnitOfWork(self.sessions), self.code_messenger),
        )


def bootstrap(settings: NotificationsSettings | None = None) -> NotificationsService:
    settings = settings or NotificationsSettings()
    policy = Policy(
        late_grace=timedelta(seconds=settings.late_grace_seconds),
        contact_wait=timedelta(seconds=settings.contact_wait_seconds),
    )
    retry = RetryPolicy(
        base_seconds=settings.retry_base_seconds,
        cap_seconds=settings.retry_cap_seconds,
        max_attempts=settings.max_attempts,
        wait_poll_seconds=max(settings.dispatcher_poll_seconds, 1.0),
    )
    worker_engine = create_engine(
        settings.database_url,
        pool_size=settings.worker_database_pool_size,
        application_name=f"{settings.service_name}-workers",
    )
    workers = session_factory(worker_engine)
    doorbell = Doorbell()
    deps = EventDependencies(
        policy=policy, repository=lambda session: SqlAlchemyRepository(session, doorbell)
    )
    deployed = {CUSTOMER_CONTACTS.name: settings.contacts_topic}
    return NotificationsService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[settings.orders_topic, settings.kitchen_topic, settings.contacts_topic],
        topology=TOPOLOGY,
        subscriptions=subscriptions(EVENT_HANDLERS, deps),
        tombstones=tombstone_subscriptions(TOMBSTONE_HANDLERS, deps, deployed.__getitem__),
        # Whatever the contacts topic is called here, its records are personal data.
        dead_letter_topics={settings.contacts_topic: CUSTOMER_CONTACTS_DEAD_LETTERS.name},
        consumer_settings=NotificationsConsumerSettings(),
        poll_seconds=settings.dispatcher_poll_seconds,
        worker_engine=worker_engine,
        # Each dispatcher has a connection of its own (see adapters.delivery_queue).
        dispatchers=[
            Dispatcher(
                channel,
                AsyncpgDeliveryQueue(
                    settings.database_url,
                    application_name=f"{settings.service_name}-dispatch-{channel.value}",
                ),
                sender,
                retry,
                doorbell=doorbell,
                batch_size=settings.dispatch_batch_size,
                lease=timedelta(seconds=settings.dispatch_lease_seconds),
            )
            for channel, sender in (
                (Channel.EMAIL, SmtpEmailSender(settings)),
                (Channel.SMS, HttpSmsSender(settings)),
                (Channel.IN_APP, None),
            )
        ],
        timers=LateTimers(SqlAlchemyUnitOfWork(workers, doorbell), policy),
        sign_in_token=settings.sign_in_token,
        code_messenger=CodeMessenger(
            {
                Channel.EMAIL: SmtpEmailSender(settings),
                Channel.SMS: HttpSmsSender(settings),
            }
        ),
    )
