"""Where each topic's dead letters go: declared once, on the topic."""

from __future__ import annotations

from eventing.topics import (
    ALL_TOPICS,
    CUSTOMER_CONTACTS,
    CUSTOMER_CONTACTS_DEAD_LETTERS,
    DEAD_LETTER_TOPICS,
    DEAD_LETTERS,
    RESTRICTED_TOPICS,
    dead_letter_topic_for,
)


def test_the_contacts_topic_has_a_restricted_dead_letter_topic_like_itself() -> None:
    assert dead_letter_topic_for(CUSTOMER_CONTACTS.name) == CUSTOMER_CONTACTS_DEAD_LETTERS.name
    assert CUSTOMER_CONTACTS_DEAD_LETTERS.config == CUSTOMER_CONTACTS.config
    assert CUSTOMER_CONTACTS_DEAD_LETTERS.compacted
    assert {CUSTOMER_CONTACTS.name, CUSTOMER_CONTACTS_DEAD_LETTERS.name} == RESTRICTED_TOPICS


def test_every_other_topic_dead_letters_to_the_open_topic() -> None:
    for topic in ALL_TOPICS:
        if topic.name not in RESTRICTED_TOPICS and topic.name not in DEAD_LETTER_TOPICS:
            assert dead_letter_topic_for(topic.name) == DEAD_LETTERS.name
    assert dead_letter_topic_for("somebody.elses.topic") == DEAD_LETTERS.name
    assert {DEAD_LETTERS.name, CUSTOMER_CONTACTS_DEAD_LETTERS.name} == DEAD_LETTER_TOPICS


def test_a_prefixed_topic_is_the_catalogue_topic_it_names() -> None:
    # The outbox's topic_prefix (tests, a cluster shared by environments) must not send a
    # contacts record to the open dead-letter topic.
    assert (
        dead_letter_topic_for("staging." + CUSTOMER_CONTACTS.name)
        == CUSTOMER_CONTACTS_DEAD_LETTERS.name
    )
    assert dead_letter_topic_for("t1234.pizzeria.orders") == DEAD_LETTERS.name
