"""The hash chain of one stream: which links break, and whether events were altered or moved.

The diagnosis is the subtle part of the checker (docs/audit.md, "What `verify` reports, per
stream"): a break is first tried as an event given back the seq it was sealed with, then as
altered bytes, and a conflicting duplicate is told genuine by the same links, so all of it
lives together here.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import orjson

from parsers.events import dumps

from .report import ChainBreak, StreamReport
from .sealed_lines import GENESIS, Copy, Known, chain_hash, short_hash

#: how far (in seqs) a moved event is searched for when a break is diagnosed
REORDER_SEARCH = 8


def genuine_copy(copies: list[Copy], before: list[Copy] | None, after: list[Copy] | None,
                 seq: int) -> int | None:
    """Which of conflicting copies links to both neighbours (None if it cannot be told)."""
    prev_hashes = {c.hash for c in before} if before else ({GENESIS} if seq == 1 else None)
    next_prev = {c.prev_hash for c in after} if after else None
    fits = [i for i, c in enumerate(copies)
            if (prev_hashes is None or c.prev_hash in prev_hashes) and (next_prev is None or c.hash in next_prev)]
    return fits[0] if len(fits) == 1 else None


def check_chain(sr: StreamReport, lo: int, hi: int, trail: dict[int, list[Copy]], known: dict[int, Known]) -> None:
    """Every link in [lo, hi] whose predecessor is at hand; breaks diagnosed as reordered or altered."""

    def copies(s: int) -> list[Copy]:
        if s in trail:
            return trail[s]
        k = known.get(s)
        return [k.copy] if k is not None else []

    broken: dict[int, ChainBreak] = {}
    seqs = sorted({s for s in trail if lo <= s <= hi} | {s for s in known if lo <= s <= hi})
    for s in seqs:
        cur = copies(s)
        if s == 1:
            if not any(c.prev_hash == GENESIS for c in cur):
                broken[s] = ChainBreak(s, cur[0].prev_hash, GENESIS, "seq 1 does not start from the genesis "
                                       "hash", cur[0].where[0])
            continue
        pred = copies(s - 1)
        if not pred:
            sr.unverified_links += 1
            continue
        hashes = {c.hash for c in pred}
        if not any(c.prev_hash in hashes for c in cur):
            broken[s] = ChainBreak(s, cur[0].prev_hash, pred[0].hash, "", cur[0].where[0])
    if not broken:
        return
    # diagnosis 1: moved events. The recorded prev_hash of seq s is the hash of the event
    # that preceded s when it was sealed; if that is an event of the stream given back the
    # seq t it was sealed with, the event now at x was sealed as t, and s as t + 1.
    sealed_as = _renumber_index(broken, seqs, copies)
    explained: set[int] = set()
    moved: dict[int, int] = {}
    for s, b in broken.items():
        hit = sealed_as.get(b.recorded_prev_hash)
        if hit is None:
            continue
        x, t = hit
        if x != t:
            moved[x] = t
        if s != t + 1:
            moved[s] = t + 1
        parts = []
        if s != t + 1:
            parts.append(f"seq {s} was sealed as seq {t + 1}")
        parts.append(f"its predecessor was the event now at seq {x}" + (f" (sealed as {t})" if x != t else ""))
        b.diagnosis = "reordered: " + ", ".join(parts)
        explained.add(s)
    # diagnosis 2: altered events. One altered event breaks its outgoing link (its hash
    # changed); if its prev_hash was changed too, its incoming link breaks as well. So a
    # run of consecutive broken links s..s+r-1 is explained by altering s-1 (r == 1) or
    # s..s+r-2 (r >= 2).
    rest = sorted(s for s in broken if s not in explained)
    runs: list[list[int]] = []
    for s in rest:
        if runs and runs[-1][-1] == s - 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    altered: set[int] = set()
    for run in runs:
        if len(run) == 1:
            s = run[0]
            culprit = s - 1
            if s + 1 not in trail and s + 1 not in known and s == seqs[-1]:
                broken[s].diagnosis = (f"seq {culprit} hashes to {short_hash(broken[s].predecessor_hash)}, "
                                       f"but seq {s} recorded {short_hash(broken[s].recorded_prev_hash)}: "
                                       f"seq {culprit} was altered, or seq {s}'s prev_hash (it is the "
                                       "last event read, so which cannot be told)")
            else:
                at = copies(culprit)[0].where[0] if copies(culprit) else "?"
                broken[s].diagnosis = (f"seq {culprit} ({at}) was altered after sealing: it hashes to "
                                       f"{short_hash(broken[s].predecessor_hash)}, seq {s} recorded "
                                       f"{short_hash(broken[s].recorded_prev_hash)}")
            altered.add(culprit)
        else:
            for s in run:
                culprits = [x for x in (s - 1, s) if run[0] <= x <= run[-1] - 1]
                altered.update(culprits)
                broken[s].diagnosis = (f"seq {'/'.join(map(str, culprits))} altered after sealing "
                                       f"(including prev_hash)")
    sr.breaks = [broken[s] for s in sorted(broken)]
    sr.altered = sorted(a for a in altered if a not in moved)
    sr.reordered = sorted((now, was) for now, was in moved.items() if now != was)


def _renumber_index(broken: dict[int, ChainBreak], seqs: list[int],
                    copies: Callable[[int], list[Copy]]) -> dict[str, tuple[int, int]]:
    """hash -> (seq the event carries now, seq t) for every event near a break re-sealed as t.

    Bounded: ``REORDER_SEARCH`` seqs either side of each break, and at most 200 breaks get this
    diagnosis (a trail rewritten wholesale is reported as breaks without it).
    """
    out: dict[str, tuple[int, int]] = {}
    done: set[tuple[int, int]] = set()
    for s in sorted(broken)[:200]:
        i = bisect.bisect_left(seqs, s)
        near = seqs[max(0, i - REORDER_SEARCH): i + REORDER_SEARCH + 1]
        for x in near:
            for c in copies(x):
                out.setdefault(c.hash, (x, x))
                try:
                    ev = orjson.loads(c.raw)
                except orjson.JSONDecodeError:
                    continue
                for t in range(max(1, s - REORDER_SEARCH - 1), s + REORDER_SEARCH + 1):
                    if t == x or (x, t) in done:
                        continue
                    done.add((x, t))
                    ev["seq"] = t
                    out.setdefault(chain_hash(dumps(ev)), (x, t))
    return out
