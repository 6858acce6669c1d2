"""The process tuning of shipper/util/tuning.py: applied by default, skipped one by one on request."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from shipper.util import tuning


@pytest.fixture
def restore_interpreter() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)
    gc.unfreeze()


def test_the_agent_collects_less_often_and_switches_threads_sooner_by_default(monkeypatch, restore_interpreter):
    monkeypatch.delenv("REDIS_SHIPPER_TUNING", raising=False)
    gc.set_threshold(700, 10, 10)
    sys.setswitchinterval(0.005)
    tuning.tune_agent()
    assert gc.get_threshold() == tuning.GC_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(tuning.SWITCH_INTERVAL)
    assert gc.get_freeze_count() > 0


def test_tuning_off_leaves_the_interpreter_at_its_defaults(monkeypatch, restore_interpreter):
    monkeypatch.setenv("REDIS_SHIPPER_TUNING", "off")
    gc.set_threshold(700, 10, 10)
    sys.setswitchinterval(0.005)
    tuning.tune_agent()
    tuning.tune_offload()
    assert gc.get_threshold() == (700, 10, 10)
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_one_setting_can_be_left_out_for_a_with_and_without_measurement(monkeypatch, restore_interpreter):
    monkeypatch.setenv("REDIS_SHIPPER_TUNING", "-switch")
    gc.set_threshold(700, 10, 10)
    sys.setswitchinterval(0.005)
    tuning.tune_agent()
    assert gc.get_threshold() == tuning.GC_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_the_offload_process_collects_less_often_but_keeps_the_switch_interval(monkeypatch, restore_interpreter):
    monkeypatch.delenv("REDIS_SHIPPER_TUNING", raising=False)
    gc.set_threshold(700, 10, 10)
    sys.setswitchinterval(0.005)
    tuning.tune_offload()
    assert gc.get_threshold() == tuning.GC_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(0.005)
