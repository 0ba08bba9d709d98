"""Who may do what on the pizzeria's broker: one Kafka principal per process, and only the ACLs
it needs.

The broker runs ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``, so a
principal without an ACL here can do nothing, and an anonymous client cannot even connect (the
listeners are SASL only). ``pizzeria access ensure`` (run by the stacks right after the topics
are made) creates these ACLs; it is idempotent. Passwords are SCRAM-SHA-512 credentials the
stack creates with the broker's storage (``kafka-storage format --add-scram``).

``admin`` is the broker's super user: it makes topics and ACLs, replays dead letters and runs
the tests' and benchmarks' own clients. No service runs as it.
"""

from __future__ import annotations

from typing import Final

from contracts.topics import (
    ALL_TOPICS,
    CUSTOMER_CONTACTS,
    CUSTOMER_CONTACTS_DEAD_LETTERS,
    DEAD_LETTERS,
    KITCHEN,
    MENU,
    ORDERS,
)
from eventing import acls
from eventing.acls import Access, Grant, grants_of
from eventing.kafka_security import KafkaSecurity

ADMIN: Final = "admin"
# The group the tap may commit under is named after it: analyst.<anything>.
ANALYST_GROUP_PREFIX: Final = "analyst."


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
        "`pizzeria tap`: the open topics, read only",
        reads=tuple(topic for topic in ALL_TOPICS if not topic.restricted),
        group_prefix=ANALYST_GROUP_PREFIX,
    ),
)
PRINCIPAL_NAMES: Final = (ADMIN, *(access.principal for access in PRINCIPALS))


def every_grant() -> list[Grant]:
    return grants_of(PRINCIPALS)


async def ensure_acls(
    bootstrap_servers: str, *, security: KafkaSecurity | None = None
) -> list[Grant]:
    """Create every grant of PRINCIPALS; returns them."""
    return await acls.ensure_acls(bootstrap_servers, every_grant(), security=security)


async def described_grants(
    bootstrap_servers: str, *, security: KafkaSecurity | None = None
) -> set[Grant]:
    """The broker's ACLs that allow something to a principal of PRINCIPALS."""
    return await acls.described_grants(
        bootstrap_servers, {access.principal for access in PRINCIPALS}, security=security
    )
