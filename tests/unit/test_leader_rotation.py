"""The rule by which the leader-moved chaos scenario (tests/support/chaos.py) picks each
partition's new preferred leader: the same brokers in the same cyclic order, starting after the
one leading, so the election always moves leadership and no data has to move."""

from __future__ import annotations

import pytest

from tests.support.chaos import PartitionState, rotated_past_leader


def partition(leader: int, replicas: tuple[int, ...]) -> PartitionState:
    return PartitionState(leader=leader, replicas=replicas, in_sync=frozenset(replicas))


def test_a_partition_led_by_its_preferred_leader_gets_the_next_one() -> None:
    assert rotated_past_leader(partition(1, (1, 2, 3))) == (2, 3, 1)


def test_a_partition_led_by_another_than_its_preferred_gets_the_one_after_that() -> None:
    # After a failover the preferred leader may not have its leadership back yet: the next in
    # the list would be the broker leading now, and the election would move nothing.
    assert rotated_past_leader(partition(2, (1, 2, 3))) == (3, 1, 2)
    assert rotated_past_leader(partition(3, (1, 2, 3))) == (1, 2, 3)


def test_a_partition_without_a_leader_gets_the_one_after_its_preferred() -> None:
    assert rotated_past_leader(partition(-1, (3, 1, 2))) == (1, 2, 3)


@pytest.mark.parametrize("replicas", [(1, 2, 3), (3, 1, 2), (2, 3, 1), (1, 3, 2), (3, 2, 1)])
@pytest.mark.parametrize("leader", [1, 2, 3])
def test_the_new_preferred_leader_never_leads_already_and_the_brokers_stay(
    replicas: tuple[int, ...], leader: int
) -> None:
    rotated = rotated_past_leader(partition(leader, replicas))
    assert rotated[0] != leader
    assert sorted(rotated) == sorted(replicas)
    # A rotation keeps each broker's successor: only the start of the cycle changes.
    start = replicas.index(rotated[0])
    assert rotated == replicas[start:] + replicas[:start]


def test_a_single_copy_cannot_move_its_leader() -> None:
    with pytest.raises(ValueError, match="no other broker"):
        rotated_past_leader(partition(1, (1,)))
