"""Where each topic's dead letters go: declared once, on the topic."""

from __future__ import annotations

from contracts.topics import (
    ALL_TOPICS,
    CUSTOMER_CONTACTS,
    CUSTOMER_CONTACTS_DEAD_LETTERS,
    DEAD_LETTERS,
    TOPOLOGY,
)


def test_the_contacts_topic_has_a_restricted_dead_letter_topic_like_itself() -> None:
    assert TOPOLOGY.dead_letters_for(CUSTOMER_CONTACTS.name) == CUSTOMER_CONTACTS_DEAD_LETTERS.name
    assert CUSTOMER_CONTACTS_DEAD_LETTERS.config == CUSTOMER_CONTACTS.config
    assert CUSTOMER_CONTACTS_DEAD_LETTERS.compacted
    assert {CUSTOMER_CONTACTS.name, CUSTOMER_CONTACTS_DEAD_LETTERS.name} == TOPOLOGY.restricted


def test_every_other_topic_dead_letters_to_the_open_topic() -> None:
    for topic in ALL_TOPICS:
        if topic.name not in TOPOLOGY.restricted and topic.name not in TOPOLOGY.dead_letter_topics:
            assert TOPOLOGY.dead_letters_for(topic.name) == DEAD_LETTERS.name
    assert TOPOLOGY.dead_letters_for("somebody.elses.topic") == DEAD_LETTERS.name
    assert {DEAD_LETTERS.name, CUSTOMER_CONTACTS_DEAD_LETTERS.name} == TOPOLOGY.dead_letter_topics


def test_a_prefixed_topic_is_the_catalogue_topic_it_names() -> None:
    # The outbox's topic_prefix (tests, a cluster shared by environments) must not send a
    # contacts record to the open dead-letter topic.
    assert (
        TOPOLOGY.dead_letters_for("staging." + CUSTOMER_CONTACTS.name)
        == CUSTOMER_CONTACTS_DEAD_LETTERS.name
    )
    assert TOPOLOGY.dead_letters_for("t1234.pizzeria.orders") == DEAD_LETTERS.name
