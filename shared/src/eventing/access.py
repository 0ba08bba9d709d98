"""Who may do what on the broker: one Kafka principal per process, and only the ACLs it needs.

The broker runs ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``, so a
principal without an ACL here can do nothing, and an anonymous client cannot even connect (the
listeners are SASL only). ``eventing access ensure`` (run by the stacks right after the topics
are made) creates these ACLs; it is idempotent. Passwords are SCRAM-SHA-512 credentials the
stack creates with the broker's storage (``kafka-storage format --add-scram``).

``admin`` is the broker's super user: it makes topics and ACLs, replays dead letters and runs
the tests' and benchmarks' own clients. No service runs as it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest, DescribeAclsRequest

from eventing.kafka_security import KafkaSecurity, kafka_security
from eventing.topics import (
    CUSTOMER_CONTACTS,
    CUSTOMER_CONTACTS_DEAD_LETTERS,
    DEAD_LETTERS,
    KITCHEN,
    MENU,
    ORDERS,
    TopicSpec,
)

ADMIN: Final = "admin"
# The group the tap may commit under is named after it: analyst.<anything>.
ANALYST_GROUP_PREFIX: Final = "analyst."


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
    # The consumer groups it may use: those whose names start with this (the service's default
    # group is its name; a second deployment beside it, or a test, uses kitchen-<something>).
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


# A consumer also reads its dead-letter topic: before it sends a dead letter again after a
# crash it looks whether the broker already has it (eventing.deadletter.dead_letter_on_topic).
PRINCIPALS: Final[tuple[Access, ...]] = (
    Access(
        "orders",
        "the orders API and its consumer of kitchen events",
        reads=(KITCHEN, DEAD_LETTERS),
        writes=(DEAD_LETTERS,),
        group_prefix="orders",
    ),
    Access(
        "orders-relay",
        "publishes the orders outbox",
        writes=(ORDERS, MENU, CUSTOMER_CONTACTS),
    ),
    Access(
        "kitchen",
        "the kitchen API and its consumer of order events",
        reads=(ORDERS, DEAD_LETTERS),
        writes=(DEAD_LETTERS,),
        group_prefix="kitchen",
    ),
    Access("kitchen-relay", "publishes the kitchen outbox", writes=(KITCHEN,)),
    Access(
        "notifications",
        "the notifications service: orders, kitchen and the restricted contacts",
        reads=(ORDERS, KITCHEN, CUSTOMER_CONTACTS, DEAD_LETTERS, CUSTOMER_CONTACTS_DEAD_LETTERS),
        writes=(DEAD_LETTERS, CUSTOMER_CONTACTS_DEAD_LETTERS),
        group_prefix="notifications",
    ),
    Access(
        "analytics",
        "the analytics projections (and `analytics rebuild`)",
        reads=(ORDERS, KITCHEN, DEAD_LETTERS),
        writes=(DEAD_LETTERS,),
        group_prefix="analytics",
    ),
    Access(
        "analyst",
        "`eventing tap`: the open topics, read only",
        reads=(ORDERS, KITCHEN, MENU, DEAD_LETTERS),
        group_prefix=ANALYST_GROUP_PREFIX,
    ),
)
PRINCIPAL_NAMES: Final = (ADMIN, *(access.principal for access in PRINCIPALS))


def every_grant() -> list[Grant]:
    return [grant for access in PRINCIPALS for grant in access.grants()]


class AccessError(RuntimeError):
    """The broker refused to create or describe an ACL."""


async def ensure_acls(
    bootstrap_servers: str, *, security: KafkaSecurity | None = None
) -> list[Grant]:
    """Create every grant of PRINCIPALS (the broker keeps one copy of each); returns them."""
    grants = every_grant()
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        **kafka_security(security).client_options(),
        client_id="eventing-access",
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
    return grants


async def described_grants(
    bootstrap_servers: str, *, security: KafkaSecurity | None = None
) -> set[Grant]:
    """The ACLs of the broker that allow something to a principal of PRINCIPALS."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        **kafka_security(security).client_options(),
        client_id="eventing-access",
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
    known = {access.principal for access in PRINCIPALS}
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
