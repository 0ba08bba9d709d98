"""The estimate model: capacity, cook times and the queue simulation, against hand-computed times.

Defaults: capacity 3, cook time = 6 + 2 × pizzas minutes (1 pizza 8, 2 → 10, 3 → 12, 4 → 14,
5 → 16).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kitchen.domain.estimates import (
    CookingOrder,
    Estimate,
    KitchenAtCapacity,
    KitchenModel,
    QueuedOrder,
    Revision,
    revisions,
    round_up_to_minute,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MODEL = KitchenModel()


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def queue(*pizzas: int) -> list[QueuedOrder]:
    return [QueuedOrder(f"o{i + 1:02d}", count) for i, count in enumerate(pizzas)]


def ready_minutes(estimates: list[Estimate]) -> dict[str, float]:
    """Estimated ready times as minutes after NOW (exact, before rounding)."""
    return {e.order_id: (e.ready_at - NOW) / timedelta(minutes=1) for e in estimates}


def test_defaults_and_cook_time() -> None:
    assert (MODEL.capacity, MODEL.base_minutes, MODEL.minutes_per_pizza) == (3, 6.0, 2.0)
    assert MODEL.cook_time(1) == timedelta(minutes=8)
    assert MODEL.cook_time(4) == timedelta(minutes=14)
    assert KitchenModel(base_minutes=5, minutes_per_pizza=1.5).cook_time(3) == timedelta(
        minutes=9.5
    )


@pytest.mark.parametrize(
    "kwargs", [{"capacity": 0}, {"base_minutes": -1}, {"minutes_per_pizza": float("nan")}]
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        KitchenModel(**kwargs)  # type: ignore[arg-type]


def test_an_empty_kitchen_starts_the_first_orders_now() -> None:
    assert MODEL.estimate([], [], NOW) == []
    [only] = MODEL.estimate([], queue(2), NOW)
    assert (only.starts_at, only.ready_at, only.estimated_ready_at) == (NOW, at(10), at(10))


def test_a_queue_of_ten_orders_on_three_slots() -> None:
    # Pizzas per order and, by hand (slots are the three times a station frees up):
    #   o01 1p  8 min: slot free at 0  -> 0..8    slots 0, 0, 8
    #   o02 2p 10 min: slot free at 0  -> 0..10   slots 0, 8, 10
    #   o03 3p 12 min: slot free at 0  -> 0..12   slots 8, 10, 12
    #   o04 1p  8 min: slot free at 8  -> 8..16   slots 10, 12, 16
    #   o05 4p 14 min: slot free at 10 -> 10..24  slots 12, 16, 24
    #   o06 2p 10 min: slot free at 12 -> 12..22  slots 16, 22, 24
    #   o07 1p  8 min: slot free at 16 -> 16..24  slots 22, 24, 24
    #   o08 1p  8 min: slot free at 22 -> 22..30  slots 24, 24, 30
    #   o09 5p 16 min: slot free at 24 -> 24..40  slots 24, 30, 40
    #   o10 2p 10 min: slot free at 24 -> 24..34
    estimates = MODEL.estimate([], queue(1, 2, 3, 1, 4, 2, 1, 1, 5, 2), NOW)
    assert [e.order_id for e in estimates] == [f"o{i:02d}" for i in range(1, 11)]
    assert [(e.starts_at - NOW) / timedelta(minutes=1) for e in estimates] == [
        0, 0, 0, 8, 10, 12, 16, 22, 24, 24,
    ]  # fmt: skip
    assert list(ready_minutes(estimates).values()) == [8, 10, 12, 16, 24, 22, 24, 30, 40, 34]


def test_cooking_orders_hold_their_slot_until_done_and_overdue_ones_until_now() -> None:
    cooking = [
        CookingOrder("late", 1, started_at=at(-10)),  # due at -2: overdue, free "now"
        CookingOrder("busy", 2, started_at=at(-5)),  # due at +5
    ]
    # Slots: now (free), now (overdue), +5.
    estimates = MODEL.estimate(cooking, queue(3, 1, 1), NOW)
    assert ready_minutes(estimates) == {"o01": 12, "o02": 8, "o03": 13}
    assert [e.starts_at for e in estimates] == [NOW, NOW, at(5)]


def test_a_full_kitchen_starts_the_next_order_when_the_first_one_finishes() -> None:
    cooking = [CookingOrder(f"c{i}", 1, started_at=at(-i)) for i in (1, 2, 3)]  # due +7 +6 +5
    estimates = MODEL.estimate(cooking, queue(1, 1, 1, 1), NOW)
    assert ready_minutes(estimates) == {"o01": 13, "o02": 14, "o03": 15, "o04": 21}


def test_more_cooking_than_capacity_after_the_setting_was_lowered() -> None:
    model = KitchenModel(capacity=2)
    cooking = [CookingOrder(f"c{i}", 1, started_at=at(i - 6)) for i in (0, 2, 4)]  # due +2 +4 +6
    # Three cook on two slots: the next order starts when only one is left, at +4.
    [first, second] = model.estimate(cooking, queue(1, 1), NOW)
    assert first.starts_at == at(4) and second.starts_at == at(6)


def test_capacity_refuses_one_more_when_capacity_are_cooking() -> None:
    MODEL.check_room(2)
    with pytest.raises(KitchenAtCapacity) as refused:
        MODEL.check_room(3)
    assert (refused.value.capacity, refused.value.cooking) == (3, 3)
    assert str(refused.value) == "kitchen at capacity"


def test_estimates_are_rounded_up_to_the_whole_minute() -> None:
    assert round_up_to_minute(NOW) == NOW
    assert round_up_to_minute(NOW + timedelta(microseconds=1)) == at(1)
    assert round_up_to_minute(NOW + timedelta(seconds=59)) == at(1)
    [estimate] = KitchenModel(base_minutes=6.25, minutes_per_pizza=0).estimate([], queue(1), NOW)
    assert estimate.ready_at == NOW + timedelta(minutes=6, seconds=15)
    assert estimate.estimated_ready_at == at(7)
    assert MODEL.ready_estimate(NOW + timedelta(seconds=20), 1) == at(9)


# ------------------------------------------------------------------------ re-estimation


def stored_after(estimates: list[Estimate]) -> dict[str, datetime | None]:
    return {e.order_id: e.estimated_ready_at for e in estimates}


def test_reestimation_after_a_start() -> None:
    before = MODEL.estimate([], queue(1, 2, 3, 1), NOW)
    assert ready_minutes(before) == {"o01": 8, "o02": 10, "o03": 12, "o04": 16}
    # Five minutes later o01 starts; the others wait in the queue.
    later = at(5)
    waiting = [QueuedOrder("o02", 2), QueuedOrder("o03", 3), QueuedOrder("o04", 1)]
    after = MODEL.estimate([CookingOrder("o01", 1, started_at=later)], waiting, later)
    # Slots: +13 (o01), +5, +5 -> o02 5..15, o03 5..17, o04 13..21.
    assert ready_minutes(after) == {"o02": 15, "o03": 17, "o04": 21}
    assert revisions(stored_after(before), after) == [
        Revision("o02", at(10), at(15)),
        Revision("o03", at(12), at(17)),
        Revision("o04", at(16), at(21)),
    ]


def test_reestimation_after_a_ready_frees_a_slot_early() -> None:
    cooking = [CookingOrder(f"c{i}", 4, started_at=NOW) for i in (1, 2, 3)]  # due +14 each
    before = MODEL.estimate(cooking, queue(1, 1), NOW)
    assert ready_minutes(before) == {"o01": 22, "o02": 22}
    # c1 is ready after 9 minutes, early: o01 starts then.
    after = MODEL.estimate(cooking[1:], queue(1, 1), at(9))
    assert ready_minutes(after) == {"o01": 17, "o02": 22}
    assert revisions(stored_after(before), after) == [Revision("o01", at(22), at(17))]


def test_reestimation_after_a_withdrawal_moves_the_queue_up() -> None:
    cooking = [CookingOrder(f"c{i}", 2, started_at=NOW) for i in (1, 2, 3)]  # due +10 each
    before = MODEL.estimate(cooking, queue(1, 2, 1, 1), NOW)
    assert ready_minutes(before) == {"o01": 18, "o02": 20, "o03": 18, "o04": 26}
    withdrawn = [QueuedOrder("o01", 1), QueuedOrder("o03", 1), QueuedOrder("o04", 1)]
    after = MODEL.estimate(cooking, withdrawn, NOW)
    assert ready_minutes(after) == {"o01": 18, "o03": 18, "o04": 18}
    assert revisions(stored_after(before), after) == [Revision("o04", at(26), at(18))]


def test_no_revision_for_a_first_estimate_or_a_move_within_the_minute() -> None:
    estimates = MODEL.estimate([], queue(1, 1), NOW + timedelta(seconds=10))
    # o01 had no estimate yet; o02 was promised 12:09 and is still (12:08:10 rounds up to 12:09).
    assert revisions({"o01": None, "o02": at(9)}, estimates) == []
    moved = MODEL.estimate([], queue(1, 1), NOW + timedelta(seconds=70))  # 12:09:10 -> 12:10
    assert revisions({"o01": at(9), "o02": at(9)}, moved) == [
        Revision("o01", at(9), at(10)),
        Revision("o02", at(9), at(10)),
    ]


def test_a_huge_capacity_is_as_fast_and_as_right_as_enough_capacity() -> None:
    # Slots beyond the queue's length are never used; a million of them must not be built.
    cooking = [CookingOrder("c1", 2, at(-3))]
    waiting = queue(1, 2, 3)
    huge = KitchenModel(capacity=1_000_000).estimate(cooking, waiting, NOW)
    enough = KitchenModel(capacity=4).estimate(cooking, waiting, NOW)
    assert huge == enough
    assert [e.starts_at for e in huge] == [NOW, NOW, NOW]
