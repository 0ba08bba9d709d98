"""Database engines and the tables every service shares (outbox, inbox, dead letters)."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, UUID
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = [
    "DATABASE_UNAVAILABLE_ERRORS",
    "DEAD_LETTER_KEPT",
    "DEAD_LETTER_PENDING",
    "DEAD_LETTER_PUBLISHED",
    "asyncpg_dsn",
    "create_engine",
    "dead_letters_table",
    "eventing_metadata",
    "inbox_table",
    "is_database_unavailable",
    "is_driver_fault",
    "is_unavailable_sqlstate",
    "new_engine",
    "outbox_table",
    "session_factory",
]

eventing_metadata = MetaData()

# Unpublished events. A row exists until Kafka acknowledged it, then it is deleted: the relay
# reads "every row still here" in id order and never "rows after the last id it saw", so a row
# whose transaction commits late cannot be skipped.
outbox_table = Table(
    "outbox",
    eventing_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("topic", Text, nullable=False),
    Column("partition_key", Text, nullable=False),
    Column("shard", SmallInteger, nullable=False),
    Column("aggregate_type", Text, nullable=False),
    Column("aggregate_id", Text, nullable=False),
    Column("aggregate_version", Integer),
    Column("event_type", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("subject", Text),
    Column("payload", JSONB, nullable=False),
    Column("traceparent", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("parked_at", DateTime(timezone=True)),
    # Rows that failed at least once: the relay holds back later events of their key.
    Index("outbox_failed_by_key", "partition_key", "id", postgresql_where=text("attempts > 0")),
)

# Events a handler has applied, written in the handler's transaction: a redelivered event is
# recognised and skipped, so at-least-once delivery gives exactly-once effects.
inbox_table = Table(
    "inbox",
    eventing_metadata,
    Column("handler", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("inbox_processed_at", "processed_at"),
)

DEAD_LETTER_PENDING = "pending"  # recorded, not yet acknowledged by the broker
DEAD_LETTER_PUBLISHED = "published"  # on its dead-letter topic; value and headers dropped here
DEAD_LETTER_KEPT = "kept"  # could not be published: kept here for good, with the error

# Every record a consumer dead-letters, per handler, recorded in its own transaction before it
# is published: a record redelivered after a crash finds its row and is published at most once
# more (only if the broker had not acknowledged it). The value and headers stay only while they
# are needed: until published, or for good when the dead letter had to be kept.
dead_letters_table = Table(
    "dead_letters",
    eventing_metadata,
    Column("consumer_group", Text, primary_key=True),
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("handler", Text, primary_key=True),  # "-": refused before any handler ran
    Column("dead_letter_topic", Text, nullable=False),
    Column("kind", Text, nullable=False),  # undecodable, unknown_type, schema_invalid, ...
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("key", BYTEA),
    Column("value", BYTEA),
    # The original headers, JSON-encoded into bytes: header names may hold anything, and JSONB
    # cannot store every string (NUL).
    Column("headers", BYTEA),
    Column("value_bytes", Integer),  # the original value's size, kept after the value goes
    Column("truncated", Boolean, nullable=False, server_default=text("false")),
    Column("error", Text),  # why it could not be published (kept), or the last failure
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Index("dead_letters_by_key", "topic", "key"),
    Index(
        "dead_letters_unpublished",
        "status",
        postgresql_where=text(f"status <> '{DEAD_LETTER_PUBLISHED}'"),
    ),
)


def asyncpg_dsn(database_url: str) -> str:
    """A SQLAlchemy ``postgresql+asyncpg://`` URL in the form asyncpg itself accepts."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def new_engine(database_url: str, **options: Any) -> AsyncEngine:
    """An engine whose error texts never quote the values of a row. Every engine is made here.

    A failing statement's error ends up in dead-letter reasons, log lines and span statuses, and
    its values can be personal data (names, phones, emails). So bound parameters are left out
    (``hide_parameters``), and so is PostgreSQL's DETAIL, which repeats them ("Key (phone)=(...)
    already exists", "Failing row contains (...)") in the driver's exception that tracebacks
    print. The statement and the constraint's name stay, which is what debugging needs; the
    server's own log keeps the DETAIL.
    """
    engine = create_async_engine(database_url, hide_parameters=True, **options)
    event.listen(engine.sync_engine, "handle_error", _drop_row_values)
    return engine


def _drop_row_values(context: ExceptionContext) -> None:
    drop_row_values(context.original_exception)


def drop_row_values(error: BaseException | None) -> None:
    """Drop PostgreSQL's DETAIL from ``error`` and its chain (see ``new_engine``); for errors of
    plain asyncpg connections, which no engine sees."""
    seen: set[int] = set()  # a chain can loop back on itself
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "detail", None) is not None:  # asyncpg's PostgresError
            error.detail = None  # type: ignore[attr-defined]
        error = error.__cause__ or error.__context__


def create_engine(database_url: str, *, pool_size: int = 10, application_name: str) -> AsyncEngine:
    engine = new_engine(
        database_url,
        pool_size=pool_size,
        # No overflow: under load an overflow connection is opened and closed per request,
        # and each new asyncpg connection introspects types again (measured: most of the cost
        # of a placement at 32 concurrent requests). Requests queue for a pooled one instead.
        max_overflow=0,
        # Under overload a request waits this long for a connection, then gets a 503.
        pool_timeout=10,
        connect_args={"server_settings": {"application_name": application_name}},
    )
    _ping_idle_connections(engine)
    return engine


# A connection back in use within this long is not pinged (see _ping_idle_connections).
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a pooled connection on checkout only if it sat idle for a while.

    After a PostgreSQL restart stale connections are then replaced instead of failing one
    request each. SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip
    per transaction, a tenth of the notification dispatcher's CPU. A connection used within the
    last second that turns out dead fails its statement, and SQLAlchemy then recycles every
    connection the pool holds: a restart costs the statements in flight, as it does anyway.
    """
    dialect = engine.dialect

    def checked_in(_: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards this connection and tries another (or a new one).
            raise DisconnectionError(f"stale pooled connection: {error!r}") from error

    event.listen(engine.sync_engine, "checkin", checked_in)
    event.listen(engine.sync_engine, "checkout", checked_out)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# What SQLAlchemy raises when the database cannot be reached or no connection is free in time.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
)


def is_database_unavailable(error: BaseException) -> bool:
    """The database cannot be reached, has no connection to spare, or the driver's session went
    wrong under it: wait and retry, nobody's fault (a restart, a failover, a pool exhausted
    under overload)."""
    if isinstance(error, (*DATABASE_UNAVAILABLE_ERRORS, OSError)) or is_driver_fault(error):
        return True
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated) or is_unavailable_sqlstate(error.orig)
    return is_unavailable_sqlstate(error)


def is_driver_fault(error: BaseException) -> bool:
    """The driver's connection or its own state failed, not the statement or its data.

    asyncpg's internal client errors ("cannot switch to state 15; another operation is in
    progress", raised as PostgreSQL went away mid-release), its interface errors on a closed
    connection, and timeouts, as they are or wrapped by SQLAlchemy. Not asyncpg's client-side
    ``DataError``, an interface error too, which says a value could not be encoded: that is the
    data's fault.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.InterfaceError) and isinstance(current, ValueError):
            return False  # asyncpg's client-side DataError: a value it could not encode
        if isinstance(
            current, (asyncpg.InternalClientError, asyncpg.InterfaceError, TimeoutError, OSError)
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def is_unavailable_sqlstate(error: object) -> bool:
    """SQLSTATE class 08 (connection exception) or 57 (operator intervention: the server is
    shutting down, restarting, or not yet accepting connections)."""
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57")
