"""The slow-log poll schedule: fast while the ring fills, relaxed when quiet, alert after a storm."""

from __future__ import annotations

import pytest

from shipper.sources.redis import slowlog as slowlog_mod
from shipper.sources.redis.slowlog import LogDrainer


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def drainer(monkeypatch: pytest.MonkeyPatch) -> tuple[LogDrainer, Clock]:
    clock = Clock()
    monkeypatch.setattr(slowlog_mod.time, "monotonic", clock)
    d = LogDrainer(key="k", address="a", committed=None, max_entries=1024, redact="keys", interval=1.0,
                   min_interval=0.05)
    d.ring_len = 128
    return d, clock


def poll(d: LogDrainer, clock: Clock, dt: float, n_new: int, gap: bool = False) -> float:
    clock.t += dt
    d._adapt(n_new, gap)
    return d.adaptive_interval


def test_a_quiet_server_is_polled_once_per_interval(drainer: tuple[LogDrainer, Clock]) -> None:
    d, clock = drainer
    for _ in range(5):
        assert poll(d, clock, 1.0, 0) == 1.0


def test_a_filling_ring_brings_the_poll_down_to_a_quarter_ring_at_the_observed_rate(drainer) -> None:
    d, clock = drainer
    poll(d, clock, 1.0, 0)
    assert poll(d, clock, 1.0, 200) == pytest.approx(0.25 * 128 / 200)  # 200/s -> 0.16 s
    assert poll(d, clock, 0.16, 400) == 0.05  # 2,500/s: clamped to min_interval


def test_a_loss_goes_straight_to_min_interval(drainer) -> None:
    d, clock = drainer
    poll(d, clock, 1.0, 0)
    assert poll(d, clock, 1.0, 5, gap=True) == 0.05


def test_after_a_storm_the_poller_stays_alert_and_relaxes_over_minutes(drainer) -> None:
    d, clock = drainer
    poll(d, clock, 1.0, 0)
    poll(d, clock, 0.05, 250)  # a 5,000/s storm
    quiet = [poll(d, clock, 1.0, 0) for _ in range(30)]
    assert max(quiet) < 1.0  # 30 s later it still polls faster than the quiet interval
    for _ in range(20):
        last = poll(d, clock, 60.0, 0)
    assert last == 1.0  # 20 minutes later it is back to the quiet interval
