"""Fold one Sentinel's failover sequence into one summary event.

A failover shows up in a Sentinel log as a dozen lines (redis-log-formats.md §2.6, real 7.0.15
sequence): ``+sdown``, ``+odown``, ``+new-epoch``, ``+try-failover``, ``+vote-for-leader``,
``+elected-leader``, ``+failover-state-*``, ``+selected-slave``, ``+promoted-slave``,
``+failover-end``, ``+switch-master``. A Sentinel that is not the leader sees ``+sdown``,
``+odown``, ``+new-epoch``, ``+vote-for-leader``, ``+config-update-from``, ``+switch-master``.
People ask "when did the master change, from what to what, how long did it take": this
module answers with one extra event per failover and per Sentinel:

* ``failover_completed`` at ``+switch-master``: old and new master, epoch, the time from the
  first line of the sequence (``+odown`` or ``+try-failover``) and whether this Sentinel led it;
* ``failover_aborted`` at ``-failover-abort-*`` (this Sentinel's attempt failed; the ``+odown``
  context is kept, so a later ``+switch-master`` still completes it) or at ``-odown`` with no
  switch (the master came back before anyone failed it over).

State is keyed by (Sentinel pid, master name): several Sentinels writing one file, or one
Sentinel monitoring several masters, do not mix. Summary events have ``lines: 0`` and the
offset of the line that completed them, so the line accounting of a file is unchanged.
"""

from __future__ import annotations

from typing import Any

from parsers.events import Event, parse_timestamp


class _Attempt:
    __slots__ = (
        "master_name",
        "start_ts",
        "start_offset",
        "old_ip",
        "old_port",
        "epoch",
        "leader_id",
        "elected",
        "events",
        "odown",
        "tried",
    )

    def __init__(self, master_name: str, start_ts: str, start_offset: int | None):
        self.master_name = master_name
        self.start_ts = start_ts
        self.start_offset = start_offset
        self.old_ip: str | None = None
        self.old_port: int | None = None
        self.epoch: int | None = None
        self.leader_id: str | None = None
        self.elected = False
        self.events = 0
        self.odown = False
        self.tried = False


def _seconds_between(a: str, b: str) -> float | None:
    try:
        return round((parse_timestamp(b) - parse_timestamp(a)).total_seconds(), 6)
    except (ValueError, TypeError):
        return None


class FailoverCorrelator:
    """Feed it every Sentinel event in file order; it returns the summary events they complete."""

    def __init__(self) -> None:
        self._open: dict[tuple[int | None, str], _Attempt] = {}
        self._epoch: dict[int | None, int] = {}  # last +new-epoch per Sentinel, before an attempt opens
        self._vote: dict[int | None, tuple[str, int | None]] = {}

    def observe(self, ev: Event) -> list[Event]:
        f = ev["fields"]
        se = f.get("sentinel_event")
        if se is None:
            return []
        pid = ev.get("pid")
        if se == "+new-epoch":
            epoch = f.get("epoch")
            if isinstance(epoch, int):
                self._epoch[pid] = epoch
                for (p, _), att in self._open.items():
                    if p == pid:
                        att.epoch = epoch
                        att.events += 1
            return []
        if se == "+vote-for-leader":
            leader, epoch = f.get("leader_id"), f.get("epoch")
            if isinstance(leader, str):
                self._vote[pid] = (leader, epoch if isinstance(epoch, int) else None)
                for (p, _), att in self._open.items():
                    if p == pid:
                        att.leader_id = leader
                        att.events += 1
            return []
        name = f.get("master_name")
        if not isinstance(name, str):
            return []
        key = (pid, name)
        att = self._open.get(key)
        is_master = f.get("instance_type") in ("master", "primary")
        if att is None and (se == "+try-failover" or (se == "+odown" and is_master)):
            att = _Attempt(name, ev["timestamp"], ev.get("offset"))
            att.epoch = self._epoch.get(pid)
            vote = self._vote.get(pid)
            if vote is not None:
                att.leader_id = vote[0]
            if is_master:
                att.old_ip = f.get("ip")
                att.old_port = f.get("port")
            self._open[key] = att
        if att is None:
            if se == "+switch-master":
                # a failover this Sentinel only heard about (no +odown seen, e.g. log started later)
                out = [self._summary(ev, None, "failover_completed", None)]
                self._epoch.pop(pid, None)
                self._vote.pop(pid, None)
                return out
            return []
        att.events += 1
        if se == "+odown":
            att.odown = True
        elif se == "+elected-leader":
            att.elected = True
        elif se == "+switch-master":
            del self._open[key]
            self._epoch.pop(pid, None)
            self._vote.pop(pid, None)
            return [self._summary(ev, att, "failover_completed", None)]
        elif se.startswith("-failover-abort-"):
            out = [self._summary(ev, att, "failover_aborted", se)]
            if att.odown:  # keep waiting: another Sentinel may still fail the master over
                att.elected = False
                att.tried = False
            else:
                del self._open[key]
            return out
        elif se == "+try-failover":
            att.tried = True
        elif se == "-odown" and is_master and not att.tried:
            # the master came back before this Sentinel started a failover. (The leader itself
            # logs -odown in the middle of its failover, before +failover-end: real 7.0.15.)
            del self._open[key]
            return [self._summary(ev, att, "failover_aborted", se)]
        return []

    def _summary(self, ev: Event, att: _Attempt | None, name: str, reason: str | None) -> Event:
        f = ev["fields"]
        fields: dict[str, Any] = {"master_name": f.get("master_name")}
        if att is not None:
            fields["old_ip"] = att.old_ip
            fields["old_port"] = att.old_port
            fields["epoch"] = att.epoch
            fields["started_at"] = att.start_ts
            fields["start_offset"] = att.start_offset
            fields["duration_seconds"] = _seconds_between(att.start_ts, ev["timestamp"])
            fields["leader"] = att.elected
            if att.leader_id is not None:
                fields["leader_id"] = att.leader_id
            fields["sentinel_events"] = att.events
        else:
            # a failover this Sentinel only heard about (+config-update-from, +switch-master)
            fields.update(old_ip=None, old_port=None, epoch=self._epoch.get(ev.get("pid")))
            fields.update(started_at=None, start_offset=None, duration_seconds=None, leader=False)
        if name == "failover_completed":
            fields["old_ip"] = f.get("old_ip", fields.get("old_ip"))
            fields["old_port"] = f.get("old_port", fields.get("old_port"))
            fields["new_ip"] = f.get("new_ip")
            fields["new_port"] = f.get("new_port")
            old = f"{fields['old_ip']}:{fields['old_port']}"
            new = f"{fields['new_ip']}:{fields['new_port']}"
            msg = f"failover of {fields['master_name']} completed: {old} -> {new}"
        else:
            fields["reason"] = reason
            msg = f"failover of {fields['master_name']} aborted: {reason}"
        if fields.get("epoch") is not None:
            msg += f", epoch {fields['epoch']}"
        if fields.get("duration_seconds") is not None:
            msg += f", {fields['duration_seconds']:.3f} s"
        out: Event = {
            "timestamp": ev["timestamp"],
            "source": "sentinel",
            "category": "failover",
            "event": name,
            "level": "warning",
            "pid": ev.get("pid"),
            "role": "sentinel",
            "message": msg,
            "fields": fields,
        }
        if "offset" in ev:
            out["offset"] = ev["offset"]
            out["lines"] = 0
        return out
