"""The pure rules of the analytics projections."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from analytics.domain.facts import Milestones, Status, derive_status, is_on_time, percentile
from analytics.domain.window import Window

T0 = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("steps", "status"),
    [
        (Milestones(), Status.UNKNOWN),
        (Milestones(placed_at=at(0)), Status.PENDING),
        (Milestones(placed_at=at(0), confirmed_at=at(1)), Status.CONFIRMED),
        (Milestones(confirmed_at=at(1), cooking_started_at=at(5)), Status.COOKING),
        # Kitchen events read before the order's own: the most advanced step counts.
        (Milestones(cooking_started_at=at(5), ready_at=at(20)), Status.READY),
        (Milestones(placed_at=at(0), ready_at=at(20), departed_at=at(22)), Status.OUT_FOR_DELIVERY),
        (Milestones(placed_at=at(0), departed_at=at(22), delivered_at=at(40)), Status.DELIVERED),
        (Milestones(ready_at=at(20), picked_up_at=at(30)), Status.PICKED_UP),
        # A cancellation is terminal, whatever else was read (a ticket may have been cooking).
        (
            Milestones(placed_at=at(0), cooking_started_at=at(5), cancelled_at=at(6)),
            Status.CANCELLED,
        ),
    ],
)
def test_the_status_is_the_most_advanced_step_whatever_the_arrival_order(
    steps: Milestones, status: Status
) -> None:
    assert derive_status(steps) == status


def test_on_time_means_ready_no_later_than_the_estimate() -> None:
    assert is_on_time(at(20), at(20)) is True
    assert is_on_time(at(19), at(20)) is True
    assert is_on_time(at(20) + timedelta(seconds=1), at(20)) is False
    assert is_on_time(at(20), None) is None


@pytest.mark.parametrize(
    "values",
    [[5.0], [1.0, 2.0], [300.0, 420.0, 610.0, 615.0, 900.0, 1200.0, 1499.0], list(range(1, 101))],
)
def test_percentile_interpolates_like_postgres_percentile_cont(values: list[float]) -> None:
    wanted = (
        values[0] if len(values) == 1 else statistics.quantiles(values, n=10, method="inclusive")[8]
    )
    assert percentile(values, 0.9) == pytest.approx(wanted)
    assert percentile(values, 0) == min(values) and percentile(values, 1) == max(values)


def test_percentile_of_nothing_is_none_and_fractions_are_checked() -> None:
    assert percentile([], 0.9) is None
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 1.5)


def test_a_window_needs_aware_times_and_may_be_empty() -> None:
    assert Window(at(0), at(60)).since == at(0)
    with pytest.raises(ValueError, match="UTC offset"):
        Window(datetime(2026, 3, 1, 18, 0), None)
    assert Window(at(60), at(0)).until == at(0)  # an interval with nothing in it, not an error
