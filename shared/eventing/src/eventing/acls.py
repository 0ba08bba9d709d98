"""Kafka ACLs, made and read over the broker's own protocol (CreateAcls, DescribeAcls).

An ``Access`` says what one principal does (topics it reads and writes, the consumer groups it
may use); ``grants_of`` turns a list of them into ACLs, ``ensure_acls`` creates them (the broker
keeps one copy of each, so it is idempotent) and ``described_grants`` reads back those of the
principals named. Meant for a broker whose authorizer denies what no ACL allows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest, DescribeAclsRequest

from eventing.errors import AccessError
from eventing.kafka_security import KafkaSecurity, kafka_security
from eventing.topics import TopicSpec

__all__ = [
    "Access",
    "Grant",
    "Operation",
    "PatternType",
    "ResourceType",
    "described_grants",
    "ensure_acls",
    "grants_of",
]


# The protocol's codes (org.apache.kafka.common.acl / resource), as CreateAcls carries them.
class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    READ = 3  # implies DESCRIBE
    WRITE = 4  # implies DESCRIBE; enough for an idempotent producer since Kafka 3.0 (KIP-679)


ALLOW: Final = 3
ANY_HOST: Final = "*"


@dataclass(frozen=True)
class Grant:
    """One ACL: ``principal`` may ``operation`` the resource named (or prefixed) ``name``."""

    principal: str
    operation: Operation
    resource: ResourceType
    name: str
    pattern: PatternType = PatternType.LITERAL

    def describe(self) -> str:
        prefix = "*" if self.pattern is PatternType.PREFIXED else ""
        return (
            f"User:{self.principal} {self.operation.name} "
            f"{self.resource.name.lower()} {self.name}{prefix}"
        )


@dataclass(frozen=True)
class Access:
    """What one process's principal does on the broker."""

    principal: str
    purpose: str
    reads: Sequence[TopicSpec] = ()
    writes: Sequence[TopicSpec] = ()
    # The consumer groups it may use: those whose names start with this (a service's default
    # group is its name; a second deployment beside it, or a test, uses <name>-<something>).
    group_prefix: str | None = None

    def grants(self) -> Iterator[Grant]:
        for topic in self.reads:
            yield Grant(self.principal, Operation.READ, ResourceType.TOPIC, topic.name)
        for topic in self.writes:
            yield Grant(self.principal, Operation.WRITE, ResourceType.TOPIC, topic.name)
        if self.group_prefix is not None:
            yield Grant(
                self.principal,
                Operation.READ,
                ResourceType.GROUP,
                self.group_prefix,
                PatternType.PREFIXED,
            )


def grants_of(principals: Iterable[Access]) -> list[Grant]:
    return [grant for access in principals for grant in access.grants()]


async def ensure_acls(
    bootstrap_servers: str, grants: Sequence[Grant], *, security: KafkaSecurity | None = None
) -> list[Grant]:
    """Create ``grants`` (the broker keeps one copy of each); returns them.

    Raises ``AccessError`` when the broker refuses one (nothing after it is created), and
    aiokafka's ``KafkaError`` when it cannot be reached.
    """
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        **kafka_security(security).client_options(),
        client_id="eventing-acls",
        request_timeout_ms=10_000,
    )
    await client.bootstrap()
    try:
        node = client.get_random_node()
        for grant in grants:
            response = await client.send(
                node,
                CreateAclsRequest(
                    grant.resource,
                    grant.name,
                    grant.pattern,
                    f"User:{grant.principal}",
                    ANY_HOST,
                    grant.operation,
                    ALLOW,
                ),
            )
            for error_code, message in response.creation_responses:
                if error_code != 0:
                    raise AccessError(f"{grant.describe()}: error {error_code}: {message}")
    finally:
        await client.close()
    return list(grants)


async def described_grants(
    bootstrap_servers: str, principals: Collection[str], *, security: KafkaSecurity | None = None
) -> set[Grant]:
    """The ACLs of the broker that allow something to one of ``principals``.

    Raises ``AccessError`` when the broker refuses to describe them, and aiokafka's
    ``KafkaError`` when it cannot be reached.
    """
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        **kafka_security(security).client_options(),
        client_id="eventing-acls",
        request_timeout_ms=10_000,
    )
    await client.bootstrap()
    # ANY (1) for every filter field but the permission.
    request = DescribeAclsRequest(1, None, 1, None, None, 1, ALLOW)
    try:
        response = await client.send(client.get_random_node(), request)
    finally:
        await client.close()
    if response.error_code != 0:
        raise AccessError(f"describing ACLs: error {response.error_code}: {response.error_message}")
    known = set(principals)
    found: set[Grant] = set()
    for resource_type, name, pattern, acls in response.resources:
        for principal, _host, operation, _permission in acls:
            user = principal.removeprefix("User:")
            try:
                grant = Grant(
                    user,
                    Operation(operation),
                    ResourceType(resource_type),
                    name,
                    PatternType(pattern),
                )
            except ValueError:  # an ACL of a kind this module never makes
                continue
            if user in known:
                found.add(grant)
    return found
