"""Fold one cluster node's failover lines into one summary event per failover.

On the replica that wins, a failover is several lines (redis-log-formats.md §2.7): a ``FAIL`` about its
master (``FAIL message received`` / ``Marking node ... as failing``), ``Start of election delayed ...
(rank #R, offset O)``, ``Starting a failover election for epoch E``, ``Failover election won``. A manual
failover starts with ``Manual failover user request accepted`` (``Forced ...`` for FORCE) and a takeover
with ``Taking over the master``, which wins without an election (``New configEpoch set to E``).

* ``cluster_failover_completed`` at the win: ``epoch``, ``failed_node`` (automatic failovers: the node
  whose FAIL started it), ``manual``, ``takeover``, ``forced``, ``duration_ms`` (from the first FAIL or
  the request to the win), ``offset`` (the replication offset logged with the election or the paused
  master's offset of a manual failover), ``started_at``;
* ``cluster_failover_failed`` when an attempt ends without a win: ``Manual failover timed out``, a new
  election round after a started one (the election timed out), or the failed master back (``Clear FAIL
  state``) before a win.

State is per server pid, so a file holding several runs does not mix them. Pure and total: unexpected
field types are ignored. Summary events have ``lines: 0`` like the Sentinel ones (:mod:`parsers.failover`).
"""

from __future__ import annotations

from typing import Any

from parsers.events import Event, parse_timestamp


class _Attempt:
    __slots__ = ("start_ts", "failed_node", "manual", "takeover", "forced", "epoch", "offset", "elected")

    def __init__(self, start_ts: str, failed_node: str | None, manual: bool, takeover: bool, forced: bool):
        self.start_ts = start_ts
        self.failed_node = failed_node
        self.manual = manual
        self.takeover = takeover
        self.forced = forced
        self.epoch: int | None = None
        self.offset: int | None = None
        self.elected = False  # an election round was started


def _ms_between(a: str, b: str) -> int | None:
    try:
        return round((parse_timestamp(b) - parse_timestamp(a)).total_seconds() * 1000)
    except (ValueError, TypeError):
        return None


class ClusterFailoverCorrelator:
    """Feed it every ``cluster`` event of one log in file order; it returns the summaries they complete."""

    def __init__(self) -> None:
        self._fails: dict[Any, dict[str, str]] = {}  # pid -> node id -> timestamp of its first FAIL
        self._open: dict[Any, _Attempt] = {}

    def observe(self, ev: Event) -> list[Event]:
        name, f, pid, ts = ev.get("event"), ev.get("fields") or {}, ev.get("pid"), ev.get("timestamp")
        if not isinstance(ts, str):
            return []
        fails = self._fails.setdefault(pid, {})
        att = self._open.get(pid)
        node = f.get("node_id")
        if name in ("fail_message_received", "node_marked_failing") and isinstance(node, str):
            fails.setdefault(node, ts)
        elif name == "node_fail_cleared" and isinstance(node, str):
            fails.pop(node, None)
            if att is not None and not att.manual and att.failed_node == node:
                del self._open[pid]
                return [self._summary(ev, att, "cluster_failover_failed", "failed master reachable again")]
        elif name == "election_delayed" and ev.get("message", "").startswith("Start of election"):
            out: list[Event] = []
            if att is not None and att.elected and not att.manual:
                out.append(self._summary(ev, att, "cluster_failover_failed", "election timed out"))
                att.elected = False
            if att is None:
                failed = max(fails, key=lambda k: fails[k]) if fails else None
                att = _Attempt(fails[failed] if failed else ts, failed, False, False, False)
                self._open[pid] = att
            off = f.get("repl_offset")
            if isinstance(off, int):
                att.offset = off
            return out
        elif name == "manual_failover_accepted":
            self._open[pid] = _Attempt(ts, None, True, False, ev.get("message", "").startswith("Forced"))
        elif name == "manual_failover_takeover":
            self._open[pid] = _Attempt(ts, None, True, True, False)
        elif att is None:
            return []
        elif name == "manual_failover_offset" and isinstance(f.get("repl_offset"), int):
            att.offset = f["repl_offset"]
        elif name == "election_started" and isinstance(f.get("epoch"), int):
            att.epoch, att.elected = f["epoch"], True
        elif name == "election_won" or (name == "config_epoch_set" and att.takeover):
            if isinstance(f.get("epoch"), int):
                att.epoch = f["epoch"]
            del self._open[pid]
            fails.clear()
            return [self._summary(ev, att, "cluster_failover_completed", None)]
        elif name == "manual_failover_timeout" and att.manual:
            del self._open[pid]
            return [self._summary(ev, att, "cluster_failover_failed", "manual failover timed out")]
        return []

    def _summary(self, ev: Event, att: _Attempt, name: str, reason: str | None) -> Event:
        fields: dict[str, Any] = {
            "epoch": att.epoch,
            "failed_node": att.failed_node,
            "manual": att.manual,
            "takeover": att.takeover,
            "forced": att.forced,
            "started_at": att.start_ts,
            "duration_ms": _ms_between(att.start_ts, ev["timestamp"]),
        }
        if att.offset is not None:
            fields["offset"] = att.offset
        kind = "takeover" if att.takeover else "manual failover" if att.manual else "failover"
        if reason is None:
            msg = f"cluster {kind} completed, epoch {att.epoch}"
        else:
            fields["reason"] = reason
            msg = f"cluster {kind} failed: {reason}"
        out: Event = {
            "timestamp": ev["timestamp"],
            "source": ev.get("source", "redis"),
            "category": "cluster",
            "event": name,
            "level": "warning",
            "pid": ev.get("pid"),
            "role": ev.get("role"),
            "message": msg,
            "fields": fields,
        }
        if "offset" in ev:
            out["offset"] = ev["offset"]
            out["lines"] = 0
        return out
