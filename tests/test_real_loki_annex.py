"""A body built from the spool's annexes and one built from the parsed events are the same push
for the real Loki 3.4.6: a replay across the two paths leaves no duplicate."""

from __future__ import annotations

import time

import pytest
from test_real_loki_sink import END, START, parsed, send, sink, wait_entries

from shipper.api import SpooledEvent

pytestmark = [pytest.mark.real_loki, pytest.mark.integration]


def test_a_batch_sent_from_its_annexes_then_from_its_events_leaves_no_duplicate(loki):
    tenant = job = "annex-replay"
    batch = parsed("redis-7.0/startup-shutdown.log", "sentinel-7.0/sentinel-1.log", job=job)
    first = sink(loki.url, tenant)
    annexer = first.annexer()
    assert annexer is not None
    annexed = [SpooledEvent(se.seq, None, se.raw, annexer.annex(se.event, se.raw)) for se in batch]
    assert all(se.annex for se in annexed)
    assert send(first, annexed).rejected == []
    assert send(sink(loki.url, tenant), batch).rejected == []  # the ordinary path, same entries
    assert send(sink(loki.url, tenant), annexed[: len(batch) // 3]).rejected == []
    wait_entries(loki, tenant, f'{{job="{job}"}}', len(batch))
    time.sleep(1)
    got = loki.entries(tenant, f'{{job="{job}"}}', START, END)
    assert len(got) == len(batch)
    assert sorted(line for _, _, line in got) == sorted(se.raw.decode() for se in batch)
