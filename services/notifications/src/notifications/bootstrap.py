"""The composition root of the notifications service: the one place that builds its parts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.topics import CUSTOMER_CONTACTS_DEAD_LETTERS, TOPOLOGY
from eventing.database import create_engine, session_factory
from notifications.adapters.providers import HttpSmsSender, SmtpEmailSender
from notifications.domain.messages import Channel
from notifications.service_layer.dispatch import Dispatcher, RetryPolicy
from notifications.service_layer.handlers import (
    Policy,
    notification_subscriptions,
    tombstone_subscriptions,
)
from notifications.service_layer.sign_in_codes import CodeMessenger
from notifications.settings import NotificationsConsumerSettings, NotificationsSettings
from service_kit.service import ConsumingService


@dataclass(kw_only=True)
class NotificationsService(ConsumingService):
    """The consumer and database, plus one dispatcher per channel and the late-timer policy.

    The dispatchers and the timer have their own pool (``worker_engine``): a flood of API
    requests can take every API connection, and must not stop messages from going out."""

    worker_engine: AsyncEngine
    worker_sessions: async_sessionmaker[AsyncSession]
    http_client: httpx.AsyncClient
    policy: Policy = field(default_factory=Policy)
    dispatchers: list[Dispatcher] = field(default_factory=list)
    poll_seconds: float = 0.5
    # Sign-in codes for the orders service, sent at once with senders of their own.
    code_messenger: CodeMessenger = field(default_factory=lambda: CodeMessenger({}))
    sign_in_token: SecretStr | None = None


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
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per SMS request otherwise
    http_client = httpx.AsyncClient()
    worker_engine = create_engine(
        settings.database_url,
        pool_size=settings.worker_database_pool_size,
        application_name=f"{settings.service_name}-workers",
    )
    workers = session_factory(worker_engine)
    return NotificationsService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[settings.orders_topic, settings.kitchen_topic, settings.contacts_topic],
        topology=TOPOLOGY,
        subscriptions=notification_subscriptions(policy),
        tombstones=tombstone_subscriptions(settings.contacts_topic),
        # Whatever the contacts topic is called here, its records are personal data.
        dead_letter_topics={settings.contacts_topic: CUSTOMER_CONTACTS_DEAD_LETTERS.name},
        consumer_settings=NotificationsConsumerSettings(),
        policy=policy,
        poll_seconds=settings.dispatcher_poll_seconds,
        http_client=http_client,
        worker_engine=worker_engine,
        worker_sessions=workers,
        dispatchers=[
            Dispatcher(Channel.EMAIL, workers, SmtpEmailSender(settings), retry),
            Dispatcher(Channel.SMS, workers, HttpSmsSender(settings, http_client), retry),
            Dispatcher(Channel.IN_APP, workers, None, retry),
        ],
        sign_in_token=settings.sign_in_token,
        code_messenger=CodeMessenger(
            {
                Channel.EMAIL: SmtpEmailSender(settings),
                Channel.SMS: HttpSmsSender(settings, http_client),
            }
        ),
    )
