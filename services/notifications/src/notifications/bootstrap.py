"""The composition root of the notifications service: the one place that builds its parts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from eventing.service import ConsumingService
from notifications.adapters.providers import HttpSmsSender, SmtpEmailSender
from notifications.domain.messages import Channel
from notifications.service_layer.dispatch import Dispatcher, RetryPolicy
from notifications.service_layer.handlers import (
    Policy,
    notification_subscriptions,
    tombstone_subscriptions,
)
from notifications.settings import NotificationsConsumerSettings, NotificationsSettings


@dataclass
class NotificationsService(ConsumingService):
    """The consumer and database, plus one dispatcher per channel and the late-timer policy."""

    policy: Policy = field(default_factory=Policy)
    dispatchers: list[Dispatcher] = field(default_factory=list)
    poll_seconds: float = 0.5
    http_client: httpx.AsyncClient | None = None


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
    service = NotificationsService.build(
        settings,
        group_id=settings.consumer_group,
        topics=[settings.orders_topic, settings.kitchen_topic, settings.contacts_topic],
        subscriptions=notification_subscriptions(policy),
        tombstones=tombstone_subscriptions(settings.contacts_topic),
        consumer_settings=NotificationsConsumerSettings(),
        policy=policy,
        poll_seconds=settings.dispatcher_poll_seconds,
        http_client=http_client,
    )
    service.dispatchers = [
        Dispatcher(Channel.EMAIL, service.sessions, SmtpEmailSender(settings), retry),
        Dispatcher(Channel.SMS, service.sessions, HttpSmsSender(settings, http_client), retry),
        Dispatcher(Channel.IN_APP, service.sessions, None, retry),
    ]
    return service
