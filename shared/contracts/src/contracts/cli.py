"""``eventing``: operate the eventing layer (topics, outbox, dead letters, schemas, auth).

    pizzeria topics ensure [--replication-factor N] [--min-insync-replicas M]
    pizzeria outbox status   --database-url URL
    pizzeria outbox parked   --database-url URL
    pizzeria outbox unpark   --database-url URL [--id N ...]
    pizzeria dead-letters list   [--group G] [--topic T]
    pizzeria dead-letters replay --group G [--topic T] [--offset P:O ...]
    pizzeria dead-letters kept   --database-url URL [--group G]
    pizzeria schemas generate [--docs DIR]
    pizzeria schemas check    [--docs DIR]
    pizzeria auth mint-token --subject S --role R [--role R ...] [--ttl SECONDS]
    pizzeria tap [--topic T ...] [--type TYPE ...] [--order-id ID ...] [--since TIME]
                 [--until TIME] [--from-beginning | --from-end] [--follow] [--group G]

``schemas generate`` writes the event documentation (docs/events/<type>.json and
docs/asyncapi.json) from the catalogue; ``schemas check`` exits 1, printing the differences, when
the files under DIR drift from the code. DIR defaults to the docs/ directory of the repository
holding the working directory: the nearest directory, the working directory itself or one of its
parents, whose pyproject.toml declares the uv workspace ([tool.uv.workspace]).

``dead-letters list`` and ``replay`` read the open dead-letter topic, or with ``--topic`` the
dead-letter topic of that source topic (``pizzeria.customer-contacts`` has a restricted one) or
that dead-letter topic itself. ``replay`` refuses truncated copies (records too large for their
dead-letter topic) and says which. ``kept`` lists the dead letters a service kept in its database
because they could not be published.

``topics ensure`` and ``access ensure`` create the topics and the principals' ACLs (both
idempotent, as the admin principal); ``access show`` lists the ACLs the broker holds for them.

``auth mint-token`` prints an HS256 bearer token (just the token, for ``$(...)``) signed with
the ``AUTH_*`` settings of the environment; it refuses when ``AUTH_JWKS_URL`` is set, since then
the identity provider signs the tokens.

``tap`` prints CloudEvents of the orders and kitchen topics (or those given with ``--topic``) as
JSON lines: attributes, ``data``, and the record's ``topic``, ``partition``, ``offset`` and
``key``. It reads from the beginning to the current end by default; ``--follow`` keeps waiting
for new events (``--from-end --follow`` prints only new ones). It joins no consumer group and
commits nothing unless ``--group`` names one, whose offsets it then resumes from and commits.
The customer-contacts topic holds personal data: the tap refuses it.

Kafka comes from ``--bootstrap-servers`` or ``KAFKA_BOOTSTRAP_SERVERS``, the principal from
``KAFKA_SECURITY_PROTOCOL`` / ``KAFKA_SASL_USERNAME`` / ``KAFKA_SASL_PASSWORD`` (the tap runs as
``analyst``, the rest as ``admin``); databases from
``--database-url`` or ``DATABASE_URL``. Output is JSON, one document or one line per item.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts import access, schemas
from contracts.topics import ALL_TOPICS, KITCHEN, OPEN_DEAD_LETTERS, ORDERS, TOPOLOGY
from eventing import admin, deadletter, tap
from eventing.acls import Grant
from eventing.database import asyncpg_dsn
from eventing.errors import RestrictedTopicError, UnknownTopicError
from service_kit import auth


def _dsn(url: str | None) -> str:
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("give --database-url or set DATABASE_URL")
    return asyncpg_dsn(url)


def _print(document: Any) -> None:
    sys.stdout.write(json.dumps(document, default=str) + "\n")


async def _run(args: argparse.Namespace) -> int:
    bootstrap = args.bootstrap_servers or os.environ.get(
        "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"
    )
    if args.area == "topics":
        try:
            created = await admin.ensure_topics(
                bootstrap,
                ALL_TOPICS,
                replication_factor=args.replication_factor,
                min_insync_replicas=args.min_insync_replicas,
            )
        except ValueError as error:
            raise SystemExit(f"topics ensure: {error}") from error
        _print({"created": created})
    elif args.area == "access":
        if args.action == "ensure":
            grants = await access.ensure_acls(bootstrap)
        else:
            grants = sorted(await access.described_grants(bootstrap), key=Grant.describe)
        _print({"acls": [grant.describe() for grant in grants]})
    elif args.area == "outbox":
        dsn = _dsn(args.database_url)
        if args.action == "status":
            _print(await admin.outbox_status(dsn))
        elif args.action == "parked":
            for row in await admin.parked_rows(dsn):
                _print(row)
        else:
            _print({"unparked": await admin.unpark(dsn, args.id or None)})
    elif args.area == "dead-letters":
        return await _dead_letters(bootstrap, args)
    elif args.area == "tap":
        return await _tap(bootstrap, args)
    return 0


def _dead_letter_topic(topic: str | None) -> tuple[str, str | None]:
    """The dead-letter topic to read for ``--topic``, and the source topic to keep, if any."""
    spec = TOPOLOGY.named(topic) if topic is not None else None
    if spec is not None and spec.dead_letters is not None:
        return spec.dead_letters, spec.name
    return topic or OPEN_DEAD_LETTERS, None  # a dead-letter topic itself


async def _dead_letters(bootstrap: str, args: argparse.Namespace) -> int:
    if args.action == "kept":
        for row in await deadletter.kept_dead_letters(_dsn(args.database_url), args.group):
            _print(row)
        return 0
    topic, source = _dead_letter_topic(args.topic)
    try:
        letters = await deadletter.read_dead_letters(bootstrap, group=args.group, topic=topic)
    except UnknownTopicError as error:
        raise SystemExit(f"{error}; --topic takes a topic or a dead-letter topic") from error
    if source is not None:
        letters = [letter for letter in letters if letter.original_topic == source]
    if args.action == "list":
        for letter in letters:
            _print(letter.as_dict())
        return 0
    if args.offset:
        wanted = {tuple(int(part) for part in item.split(":", 1)) for item in args.offset}
        letters = [x for x in letters if (x.partition, x.offset) in wanted]
    truncated = [letter for letter in letters if letter.truncated]
    replayable = [letter for letter in letters if not letter.truncated]
    replayed = await deadletter.replay_dead_letters(bootstrap, replayable)
    refused = [
        {
            "dlq_partition": letter.partition,
            "dlq_offset": letter.offset,
            "why": f"a truncated copy: the first {len(letter.value or b'')} of "
            f"{letter.value_bytes} bytes; the original record is "
            f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}",
        }
        for letter in truncated
    ]
    _print({"replayed": replayed, "refused": refused})
    if refused:
        sys.stderr.write(
            f"refused to replay {len(refused)} truncated dead letter(s): a truncated copy is not "
            "the original record\n"
        )
        return 1
    return 0


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a UTC offset, e.g. 2026-01-31T18:00Z")
    return moment


async def _tap(bootstrap: str, args: argparse.Namespace) -> int:
    topics = args.topic or [ORDERS.name, KITCHEN.name]
    try:
        tap.check_topics(topics, TOPOLOGY.restricted)
    except RestrictedTopicError as error:
        sys.stderr.write(f"refused: {error}\n")
        return 2
    where = tap.TapFilter(
        types=frozenset(args.type or ()),
        keys=frozenset(args.order_id or ()),
        key_field="order_id",
        since=args.since,
        until=args.until,
    )
    async for event in tap.tap(
        bootstrap,
        topics=topics,
        restricted_topics=TOPOLOGY.restricted,
        where=where,
        from_beginning=not args.from_end,
        follow=args.follow,
        group=args.group,
    ):
        _print(event)
        sys.stdout.flush()
    return 0


def _schemas(args: argparse.Namespace) -> int:
    try:
        directory = Path(args.docs) if args.docs else schemas.default_docs_directory()
    except FileNotFoundError as error:
        raise SystemExit(f"{error}; give --docs DIR") from error
    if args.action == "generate":
        changes = schemas.write_docs(directory)
        _print({"directory": directory.as_posix(), "changes": changes})
        return 0
    differences = schemas.check_docs(directory)
    _print({"directory": directory.as_posix(), "differences": differences})
    if differences:
        sys.stderr.write(
            "the generated event docs differ from the code:\n"
            + "".join(f"  {difference}\n" for difference in differences)
            + f"run `{schemas.GENERATE_COMMAND}` and commit the result\n"
        )
        return 1
    return 0


def _auth(args: argparse.Namespace) -> int:
    try:
        settings = auth.AuthSettings()
    except ValidationError as error:
        raise SystemExit(f"invalid AUTH_* settings:\n{error}") from error
    roles = [auth.Role(name) for name in args.role]
    try:
        token = auth.mint_token(
            settings,
            args.subject,
            roles,
            ttl_seconds=args.ttl,
            audiences=[auth.audience_of(service) for service in args.audience]
            or auth.EVERY_SERVICE,
        )
    except ValueError as error:
        raise SystemExit(str(error)) from error
    if settings.jwt_secret.get_secret_value() == auth.DEVELOPMENT_SECRET:
        # stderr, so that `TOKEN=$(pizzeria auth mint-token ...)` still captures only the token.
        sys.stderr.write("warning: signed with the public development secret (AUTH_JWT_SECRET)\n")
    sys.stdout.write(token + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pizzeria", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers")
    areas = parser.add_subparsers(dest="area", required=True)
    topics = areas.add_parser("topics", help="create the system's Kafka topics")
    ensure_topics = topics.add_subparsers(dest="action", required=True).add_parser("ensure")
    ensure_topics.add_argument(
        "--replication-factor",
        type=int,
        default=1,
        help="copies of each partition, for topics not made yet (3 on a three-broker cluster)",
    )
    ensure_topics.add_argument(
        "--min-insync-replicas",
        type=int,
        help="the copies a write with acks=all waits for (2 with three copies)",
    )
    acls = areas.add_parser(
        "access", help="the ACLs of the services' Kafka principals (as the admin principal)"
    )
    acl_actions = acls.add_subparsers(dest="action", required=True)
    acl_actions.add_parser("ensure", help="create every ACL of contracts.access")
    acl_actions.add_parser("show", help="list the broker's ACLs for those principals")
    outbox = areas.add_parser("outbox", help="inspect the outbox of a service database")
    outbox_actions = outbox.add_subparsers(dest="action", required=True)
    for name in ("status", "parked", "unpark"):
        action = outbox_actions.add_parser(name)
        action.add_argument("--database-url")
        if name == "unpark":
            action.add_argument(
                "--id", type=int, action="append", help="only this row (repeatable)"
            )
    letters = areas.add_parser("dead-letters", help="list, replay or inspect dead letters")
    letter_actions = letters.add_subparsers(dest="action", required=True)
    topic_help = (
        "a source topic (its dead-letter topic is read) or a dead-letter topic "
        f"(default {OPEN_DEAD_LETTERS})"
    )
    listing = letter_actions.add_parser("list")
    listing.add_argument("--group")
    listing.add_argument("--topic", help=topic_help)
    replay = letter_actions.add_parser("replay")
    replay.add_argument("--group", required=True)
    replay.add_argument("--topic", help=topic_help)
    replay.add_argument(
        "--offset", action="append", help="PARTITION:OFFSET in the dead-letter topic"
    )
    kept = letter_actions.add_parser(
        "kept", help="dead letters a service kept in its database: they could not be published"
    )
    kept.add_argument("--database-url")
    kept.add_argument("--group")
    docs = areas.add_parser("schemas", help="generate or check the event documentation")
    docs_actions = docs.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("generate", "write docs/events/<type>.json and docs/asyncapi.json"),
        ("check", "exit 1 when the committed docs differ from the code"),
    ):
        action = docs_actions.add_parser(name, help=help_text)
        action.add_argument(
            "--docs",
            metavar="DIR",
            help="docs directory (default: docs/ of the uv workspace root at or above the "
            "working directory)",
        )
    auth_area = areas.add_parser("auth", help="bearer tokens for the services' HTTP APIs")
    auth_actions = auth_area.add_subparsers(dest="action", required=True)
    mint = auth_actions.add_parser("mint-token", help="print an HS256 token signed with AUTH_*")
    mint.add_argument("--subject", required=True, help="the sub claim: who the token is for")
    mint.add_argument(
        "--role",
        action="append",
        required=True,
        choices=[role.value for role in auth.Role],
        help="a role of the subject (repeatable)",
    )
    mint.add_argument("--ttl", type=int, default=3600, help="seconds until expiry (default 3600)")
    mint.add_argument(
        "--audience",
        action="append",
        default=[],
        choices=auth.SERVICES,
        help="a service the token is for (repeatable; default: every service)",
    )
    tapping = areas.add_parser(
        "tap", help="print events of the orders and kitchen topics as JSON lines"
    )
    tapping.add_argument(
        "--topic", action="append", help="a topic (repeatable; default: orders and kitchen)"
    )
    tapping.add_argument("--type", action="append", help="only this CloudEvents type (repeatable)")
    tapping.add_argument("--order-id", action="append", help="only this order (repeatable)")
    tapping.add_argument("--since", type=_moment, help="only events whose time is at or after")
    tapping.add_argument("--until", type=_moment, help="only events whose time is before")
    start = tapping.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the beginning of the topics (the default)",
    )
    start.add_argument("--from-end", action="store_true", help="start at the end: new events only")
    tapping.add_argument("--follow", action="store_true", help="keep waiting for new events")
    tapping.add_argument(
        "--group", help="a consumer group of your own to resume from and commit to (default none)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.area == "schemas":
        return _schemas(args)
    if args.area == "auth":
        return _auth(args)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
