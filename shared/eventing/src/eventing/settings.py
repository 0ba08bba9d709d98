"""Tuning of the runtime's two long-running loops: the outbox relay and the consumer.

A service reads each with its own env prefix (``<SERVICE>_RELAY_``, ``<SERVICE>_CONSUMER_``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventing.cloudevents_kafka import DEFAULT_LIMITS, DecodeLimits

__all__ = ["ConsumerSettings", "RelaySettings"]


class RelaySettings(BaseSettings):
    """Tuning of an outbox relay process; read with the producing service's prefix + ``RELAY_``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    batch_size: int = 500
    idle_poll_seconds: float = 1.0  # the longest wait between polls when nothing is notified
    metrics_port: int = 9100
    metrics_host: str = "127.0.0.1"
    max_attempts: int = 10
    linger_ms: int = 2
    # After an error that cost the relay its session, it waits a random time up to this (growing
    # from 0.2 s with each failure in a row, back to the start once it works again).
    reconnect_max_seconds: float = Field(default=5.0, gt=0)


class ConsumerSettings(BaseSettings):
    """Tuning of a consumer runtime; read with the consuming service's prefix + ``CONSUMER_``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    max_attempts: int = 5
    retry_base_seconds: float = 0.1
    retry_max_seconds: float = 5.0
    stall_timeout_seconds: float = 60.0
    # The longest pause before a Kafka consumer that died or stalled is replaced.
    restart_max_seconds: float = Field(default=10.0, gt=0)
    max_poll_records: int = 500
    # Events applied in one database transaction (their inbox rows and every handler's effects):
    # one commit per batch instead of one per event and handler. 1 gives each its own.
    batch_size: int = 100
    # While records keep coming, offsets are committed at most this often (and at once when a
    # poll finds nothing): a redelivery after a crash is absorbed by the inbox. 0: every poll.
    # Short enough that the group's committed lag, what operators and the chaos runs watch,
    # stays within a fraction of a second of records.
    offset_commit_interval_seconds: float = Field(default=0.25, ge=0)
    auto_offset_reset: str = "earliest"
    # A record larger than this (key + value + headers) is dead-lettered without being parsed.
    max_record_bytes: int = Field(default=DEFAULT_LIMITS.max_record_bytes, gt=0)
    # JSON nested deeper than this is dead-lettered (checked without recursion; ours nest 4).
    max_json_depth: int = Field(default=DEFAULT_LIMITS.max_json_depth, gt=0)
    # How long a dead letter may keep failing to publish with errors worth retrying before it is
    # kept in the dead_letters table instead and the partition moves on.
    dead_letter_publish_timeout_seconds: float = Field(default=30.0, gt=0)

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_record_bytes=self.max_record_bytes, max_json_depth=self.max_json_depth
        )
