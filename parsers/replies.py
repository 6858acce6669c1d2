"""Redis replies -> events: SLOWLOG, COMMANDLOG, LATENCY LATEST, ACL LOG, CONFIG GET, INFO.

Pure and total, like every parser: replies in (the raw RESP2 or RESP3 shapes redis-py returns
when no response callback is applied: ``bytes``, ``int``, lists, dicts), events out. No
sockets, no clocks (the caller passes ``now`` where the data has no timestamp of its own), and
no exception escapes for any input: a reply that does not have the expected shape becomes an
``unparsed_reply`` event carrying its ``repr`` (bounded), so nothing is dropped silently.

Why the ids and timestamps are derived only from the data: a batch re-sent after a crash must be
byte-identical, so the event id is ``event_id(origin, <position in the reply stream>)`` and a
slowlog entry's timestamp is its second plus ``id % 1_000_000`` microseconds (the second alone
would collapse a storm into one instant, and a sub-second part from a clock would differ on
replay).

Redaction (``none`` | ``keys`` | ``hash`` | ``drop``) happens here too, because the slowlog is the
one place where user data (keys, values) and credentials (AUTH, HELLO AUTH, MIGRATE AUTH, CONFIG
SET requirepass on servers older than 6.2.4 that did not redact) enter the pipeline. Secrets
are redacted whatever the mode.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from parsers.events import Event, event_id, format_epoch, make_event

REDACTED = "(redacted)"
#: the client name the poller sets on its connection; its own commands are filtered out
SELF_CLIENT_NAME = "redis-shipper"
REDACT_MODES = ("none", "keys", "hash", "drop")
_MAX_REPR = 2000

# ---------------------------------------------------------------------------------------------
# small total helpers


def _s(value: Any) -> str:
    """Bytes/str/int -> str, never raising (invalid UTF-8 becomes ``\\xNN`` escapes)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        # a str could still carry lone surrogates that orjson refuses
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None:
        return ""
    return str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(_s(value).strip())
    except (ValueError, TypeError):
        return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(_s(value).strip())
    except (ValueError, TypeError):
        return None


def _epoch_micro(seconds: int, micro: int) -> str:
    """``seconds`` + ``micro`` µs as an RFC 3339 string, exactly (no float rounding)."""
    try:
        dt = datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro % 1_000_000)
    except (OverflowError, OSError, ValueError):
        dt = datetime.fromtimestamp(0, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch_ms(ms: int) -> str:
    return _epoch_micro(ms // 1000, (ms % 1000) * 1000)


def _short_repr(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= _MAX_REPR else r[:_MAX_REPR] + f"... ({len(r) - _MAX_REPR} more chars)"


def unparsed_event(
    what: str,
    reply: Any,
    *,
    origin: str,
    position: str,
    timestamp: str,
    source: str = "agent",
    role: str | None = None,
) -> Event:
    """A reply we could not understand: keep it (bounded) instead of dropping it."""
    ev = make_event(
        timestamp=timestamp,
        source=source,
        category="other",
        event="unparsed_reply",
        level="warning",
        role=role,
        message=f"unexpected {what} reply shape",
        fields={"reply_kind": what, "reply": _short_repr(reply)},
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, position)
    return ev


# ---------------------------------------------------------------------------------------------
# secrets


#: CONFIG parameters whose values are credentials (Redis and Valkey spellings). Their values
#: are never put in an event or a checkpoint; ``is_secret_param`` also catches future names.
SECRET_CONFIG_PARAMS = frozenset(
    {
        "requirepass",
        "masterauth",
        "primaryauth",
        "masteruser",
        "primaryuser",
        "tls-key-file-pass",
        "tls-client-key-file-pass",
        "sentinel-pass",
        "auth-pass",
        "sentinel-user",
        "auth-user",
        "cluster-announce-auth",
    }
)
_SECRET_SUFFIXES = ("pass", "password", "auth", "secret", "token", "-passphrase")


def is_secret_param(name: str) -> bool:
    """True for a config parameter that holds a credential (exact list plus suffix rule)."""
    n = name.lower()
    return n in SECRET_CONFIG_PARAMS or n.endswith(_SECRET_SUFFIXES)


def redact_secrets(argv: list[str]) -> list[str]:
    """Replace every credential in a command line by ``(redacted)``, whatever the mode.

    Covers what Redis 6.2.4+ redacts itself (so older servers, which log ``CONFIG SET
    requirepass x`` in clear, are covered too): AUTH, HELLO ... AUTH user pass, MIGRATE ... AUTH
    pass / AUTH2 user pass, ACL SETUSER/GETUSER/DELUSER, CONFIG SET / SENTINEL SET / SENTINEL
    CONFIG SET of a secret parameter.
    """
    if not argv:
        return argv
    out = list(argv)
    cmd = out[0].lower()
    n = len(out)

    def red(i: int) -> None:
        if 0 < i < n:
            out[i] = REDACTED

    if cmd == "auth":
        for i in range(1, n):
            red(i)
    elif cmd == "hello":
        for i in range(1, n):
            if out[i].lower() == "auth":
                red(i + 1)
                red(i + 2)
    elif cmd == "migrate":
        for i in range(6, n):
            t = out[i].lower()
            if t == "auth":
                red(i + 1)
            elif t == "auth2":
                red(i + 1)
                red(i + 2)
            elif t == "keys":
                break
    elif cmd == "acl" and n > 1 and out[1].lower() in ("setuser", "getuser", "deluser"):
        for i in range(2, n):
            red(i)
    elif cmd == "config" and n > 1 and out[1].lower() == "set":
        for i in range(2, n - 1, 2):
            if is_secret_param(out[i]):
                red(i + 1)
    elif cmd == "sentinel" and n > 1:
        sub = out[1].lower()
        if sub == "set":  # SENTINEL SET <master> <option> <value> [...]
            for i in range(3, n - 1, 2):
                if is_secret_param(out[i]):
                    red(i + 1)
        elif sub == "config" and n > 2 and out[2].lower() == "set":
            for i in range(3, n - 1, 2):
                if is_secret_param(out[i]):
                    red(i + 1)
    return out


# ---------------------------------------------------------------------------------------------
# key positions for the ``keys`` redaction mode

# (first, last, step) over argv (argv[0] is the command); last < 0 counts from the end
# (-1 = last argument). Taken from COMMAND INFO key specs of Redis 7 for the common commands;
# commands absent from every table keep their name and have all arguments replaced by lengths.
_ONE = (1, 1, 1)
_ALL = (1, -1, 1)
_KEY_RANGES: dict[str, tuple[int, int, int]] = {}
for _c in (
    "get set setnx setex psetex getset getdel getex append strlen incr decr incrby decrby incrbyfloat "
    "setrange getrange substr setbit getbit bitcount bitpos bitfield bitfield_ro "
    "hget hset hsetnx hmset hmget hdel hlen hstrlen hkeys hvals hgetall hexists hincrby hincrbyfloat "
    "hscan hrandfield hexpire hpexpire hexpireat hpexpireat httl hpttl hpersist hexpiretime hpexpiretime "
    "hgetdel hgetex hsetex "
    "lpush rpush lpushx rpushx lpop rpop llen lindex lset lrange ltrim lrem linsert lpos "
    "sadd srem smembers sismember smismember scard spop srandmember sscan "
    "zadd zincrby zrem zcard zcount zscore zmscore zrank zrevrank zrange zrangebyscore zrevrangebyscore "
    "zrevrange zrangebylex zrevrangebylex zlexcount zremrangebyrank zremrangebyscore zremrangebylex "
    "zpopmin zpopmax zrandmember zscan "
    "expire pexpire expireat pexpireat expiretime pexpiretime ttl pttl persist type dump restore "
    "restore-asking pfadd pfdebug xadd xlen xrange xrevrange xdel xtrim xack xclaim xautoclaim xpending "
    "xsetid geoadd geopos geodist geohash georadius_ro georadiusbymember_ro geosearch sort sort_ro "
    "json.get json.set json.del json.type json.arrappend json.numincrby"
).split():
    _KEY_RANGES[_c] = _ONE
for _c in (
    "del unlink exists touch mget watch sinter sunion sdiff pfcount pfmerge sinterstore sunionstore "
    "sdiffstore".split()
):
    _KEY_RANGES[_c] = _ALL
for _c in "rename renamenx smove rpoplpush lmove blmove copy brpoplpush lcs geosearchstore".split():
    _KEY_RANGES[_c] = (1, 2, 1)
for _c in "blpop brpop bzpopmin bzpopmax".split():
    _KEY_RANGES[_c] = (1, -2, 1)  # the last argument is the timeout
_KEY_RANGES["mset"] = (1, -1, 2)
_KEY_RANGES["msetnx"] = (1, -1, 2)
_KEY_RANGES["bitop"] = (2, -1, 1)
_KEY_RANGES["georadius"] = _ONE
_KEY_RANGES["georadiusbymember"] = _ONE

#: commands whose key count is an argument: name -> index of numkeys; keys follow it.
#: ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE also have a destination key at index 1.
_NUMKEYS: dict[str, int] = {
    "eval": 2,
    "evalsha": 2,
    "eval_ro": 2,
    "evalsha_ro": 2,
    "fcall": 2,
    "fcall_ro": 2,
    "zunion": 1,
    "zinter": 1,
    "zdiff": 1,
    "zintercard": 1,
    "sintercard": 1,
    "lmpop": 1,
    "zmpop": 1,
    "blmpop": 2,
    "bzmpop": 2,
    "zunionstore": 2,
    "zinterstore": 2,
    "zdiffstore": 2,
}
_DEST_PLUS_NUMKEYS = frozenset({"zunionstore", "zinterstore", "zdiffstore"})

#: container commands: the subcommand (argv[1]) is kept; some subcommands name a key at argv[2]
_CONTAINERS = frozenset(
    "config client slowlog latency cluster command memory object debug acl module function script xinfo "
    "xgroup pubsub commandlog sentinel".split()
)
_CONTAINER_KEY_AT_2 = frozenset(
    {
        ("memory", "usage"),
        ("object", "encoding"),
        ("object", "freq"),
        ("object", "idletime"),
        ("object", "refcount"),
        ("debug", "object"),
        ("xinfo", "stream"),
        ("xinfo", "groups"),
        ("xinfo", "consumers"),
        ("xgroup", "create"),
        ("xgroup", "setid"),
        ("xgroup", "destroy"),
        ("xgroup", "createconsumer"),
        ("xgroup", "delconsumer"),
        ("cluster", "keyslot"),
    }
)
#: argv that are names, not data: kept in ``keys`` mode (CONFIG GET/SET parameter names)
_TRUNC_BYTES = re.compile(r"^(?P<head>.*)\.\.\. \((?P<more>\d+) more bytes\)$", re.S)
_TRUNC_ARGS = re.compile(r"^\.\.\. \(\d+ more arguments\)$")


def key_positions(argv: list[str]) -> set[int]:
    """Indexes of ``argv`` that are key names, from the built-in table (empty when unknown)."""
    n = len(argv)
    if n < 2:
        return set()
    cmd = argv[0].lower()
    rng = _KEY_RANGES.get(cmd)
    if rng is not None:
        first, last, step = rng
        last = last if last >= 0 else n + last
        return set(range(first, min(last, n - 1) + 1, step))
    if cmd in _NUMKEYS:
        at = _NUMKEYS[cmd]
        numkeys = _int(argv[at]) if at < n else None
        keys: set[int] = {1} if cmd in _DEST_PLUS_NUMKEYS else set()
        if numkeys is not None and numkeys > 0:
            keys.update(range(at + 1, min(at + 1 + numkeys, n)))
        return keys
    if cmd in ("xread", "xreadgroup"):
        for i in range(1, n):
            if argv[i].lower() == "streams":
                rest = n - i - 1
                return set(range(i + 1, i + 1 + rest // 2))
        return set()
    if cmd == "migrate":
        keys = set()
        if n > 3 and argv[3] != "":
            keys.add(3)
        for i in range(6, n):
            if argv[i].lower() == "keys":
                keys.update(range(i + 1, n))
                break
        return keys
    if cmd in _CONTAINERS and n > 2 and (cmd, argv[1].lower()) in _CONTAINER_KEY_AT_2:
        return {2}
    return set()


def _kept_names(argv: list[str]) -> set[int]:
    """Arguments that are structure, not data, kept in ``keys``/``hash`` mode: the subcommand of
    container commands and CONFIG GET/SET parameter names."""
    n = len(argv)
    cmd = argv[0].lower() if argv else ""
    kept: set[int] = set()
    if cmd in _CONTAINERS and n > 1:
        kept.add(1)
        sub = argv[1].lower()
        if cmd == "config" and sub == "get":
            kept.update(range(2, n))
        elif cmd == "config" and sub == "set":
            kept.update(range(2, n, 2))
    return kept


def _length_of(arg: str) -> int:
    """The original byte length of an argument, undoing Redis's ``... (N more bytes)`` cut."""
    m = _TRUNC_BYTES.match(arg)
    if m:
        return len(m.group("head").encode("utf-8", "surrogatepass")) + int(m.group("more"))
    return len(arg.encode("utf-8", "surrogatepass"))


def _hash(arg: str) -> str:
    return "h:" + hashlib.blake2b(arg.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def redact_args(argv: list[str], mode: str) -> list[str] | None:
    """``argv[1:]`` after redaction (``None`` in ``drop`` mode). ``argv[0]`` is the command.

    * ``none``: as Redis logged them (secrets still redacted);
    * ``keys``: key names (and subcommands, CONFIG parameter names) kept, every other argument
      replaced by ``(<n> bytes)``, its original length; unknown commands: all args -> lengths;
    * ``hash``: the same, but keys are replaced by a short blake2b hash, so the same key can be
      followed across entries without being shown (a hash of a guessable name can be reversed
      by trying names: use ``keys``/``drop`` if key names themselves are secret);
    * ``drop``: no arguments at all.

    Redis's own markers ``(redacted)`` and ``... (N more arguments)`` are kept as they are.
    """
    if not argv:
        return [] if mode != "drop" else None
    argv = redact_secrets(argv)
    if mode == "drop":
        return None
    if mode == "none":
        return argv[1:]
    if mode not in REDACT_MODES:  # an unknown mode must not leak: behave like ``keys``
        mode = "keys"
    keys = key_positions(argv)
    kept = _kept_names(argv)
    out: list[str] = []
    for i in range(1, len(argv)):
        a = argv[i]
        if a == REDACTED or _TRUNC_ARGS.match(a):
            out.append(a)
        elif i in kept:
            out.append(a)
        elif i in keys:
            out.append(a if mode == "keys" else _hash(a))
        else:
            out.append(f"({_length_of(a)} bytes)")
    return out


# ---------------------------------------------------------------------------------------------
# SLOWLOG / COMMANDLOG entries


def parse_log_entry(entry: Any) -> dict[str, Any] | None:
    """One SLOWLOG/COMMANDLOG entry (4 or 6 elements, or a redis-py dict) -> a plain dict, or
    ``None`` when it is not an entry."""
    if isinstance(entry, dict):  # redis-py's parsed shape, accepted for convenience
        eid, ts = _int(entry.get("id")), _int(entry.get("start_time"))
        value = _int(entry.get("duration"))
        cmd = entry.get("command", b"")
        argv = [_s(a) for a in (cmd.split(b" ") if isinstance(cmd, bytes) else _s(cmd).split(" "))]
        addr, name = entry.get("client_address"), entry.get("client_name")
    elif isinstance(entry, list | tuple) and len(entry) >= 4:
        eid, ts, value = _int(entry[0]), _int(entry[1]), _int(entry[2])
        raw_argv = entry[3]
        if not isinstance(raw_argv, list | tuple):
            return None
        argv = [_s(a) for a in raw_argv]
        addr = entry[4] if len(entry) > 4 else None
        name = entry[5] if len(entry) > 5 else None
    else:
        return None
    if eid is None or ts is None or value is None or eid < 0:
        return None
    return {
        "id": eid,
        "time": ts,
        "value": value,
        "argv": argv,
        "client_addr": _s(addr) if addr is not None else None,
        "client_name": _s(name) if name is not None else None,
    }


def parse_log_reply(reply: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """A SLOWLOG GET / COMMANDLOG GET reply -> (entries oldest first, unparseable items)."""
    entries: list[dict[str, Any]] = []
    bad: list[Any] = []
    if not isinstance(reply, list | tuple):
        return entries, [reply]
    for item in reply:
        e = parse_log_entry(item)
        if e is None:
            bad.append(item)
        else:
            entries.append(e)
    entries.sort(key=lambda e: e["id"])
    return entries, bad


def is_self_entry(entry: dict[str, Any], client_name: str = SELF_CLIENT_NAME) -> bool:
    """An entry the poller caused (its own SLOWLOG GET, INFO, ...): not shipped."""
    return entry.get("client_name") == client_name


def slowlog_timestamp(entry: dict[str, Any]) -> str:
    """The entry's second plus ``id % 1_000_000`` µs: unique within a second, same on replay."""
    return _epoch_micro(entry["time"], entry["id"] % 1_000_000)


_LOG_KINDS = {
    # kind -> (event name, value field, unit for the message)
    "slow": ("slow_command", "duration_us", "us"),
    "large-request": ("large_request", "request_bytes", "bytes"),
    "large-reply": ("large_reply", "reply_bytes", "bytes"),
}


def slowlog_event(
    entry: dict[str, Any],
    *,
    origin: str,
    run_id: str,
    redact: str = "keys",
    role: str | None = None,
    kind: str = "slow",
) -> Event:
    """An event for one parsed SLOWLOG (``kind="slow"``) or COMMANDLOG entry."""
    name, value_field, unit = _LOG_KINDS.get(kind, _LOG_KINDS["slow"])
    argv = entry["argv"]
    command = argv[0].lower() if argv else ""
    args = redact_args(argv, redact)
    fields: dict[str, Any] = {
        "id": entry["id"],
        value_field: entry["value"],
        "command": command,
    }
    if args is not None:
        fields["args"] = args
    fields["argc"] = _argc(argv)
    fields["client_addr"] = entry.get("client_addr")
    fields["client_name"] = entry.get("client_name")
    fields["run_id"] = run_id
    if kind != "slow":
        fields["log"] = kind
    shown = command.upper() or "?"
    if command in _CONTAINERS and len(argv) > 1:
        shown += " " + argv[1].upper()
    ev = make_event(
        timestamp=slowlog_timestamp(entry),
        source="slowlog",
        category="slowlog",
        event=name,
        level="notice",
        role=role,
        message=f"{shown} {entry['value']} {unit}",
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, str(entry["id"]))
    return ev


def _argc(argv: list[str]) -> int:
    """Number of arguments the client sent, undoing the ``... (N more arguments)`` cut."""
    if argv and _TRUNC_ARGS.match(argv[-1]):
        m = re.search(r"\((\d+) more", argv[-1])
        if m:
            return len(argv) - 1 + int(m.group(1))
    return len(argv)


def slowlog_lost_event(
    *,
    origin: str,
    run_id: str,
    first_lost_id: int,
    last_lost_id: int,
    timestamp: str,
    role: str | None = None,
    kind: str = "slow",
    reason: str = "rotated",
) -> Event:
    """Entries that left the ring (or lay beyond the bounded read) before the poller saw them."""
    lost = last_lost_id - first_lost_id + 1
    what = "slowlog" if kind == "slow" else f"commandlog {kind}"
    fields: dict[str, Any] = {
        "lost": lost,
        "first_lost_id": first_lost_id,
        "last_lost_id": last_lost_id,
        "run_id": run_id,
        "reason": reason,
    }
    if kind != "slow":
        fields["log"] = kind
    ev = make_event(
        timestamp=timestamp,
        source="slowlog",
        category="slowlog",
        event="slowlog_entries_lost",
        level="warning",
        role=role,
        message=f"{lost} {what} entries lost (ids {first_lost_id}..{last_lost_id}): "
        + (
            "they left the ring before they could be read"
            if reason == "rotated"
            else "they lie beyond max_entries, the bounded read"
        ),
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, f"lost:{first_lost_id}-{last_lost_id}")
    return ev


def new_log_entries(
    entries: list[dict[str, Any]], last_id: int | None
) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """Entries after the cursor (oldest first) and the lost id range, if the oldest returned
    entry is newer than ``last_id + 1``.

    ``last_id`` is ``None`` on a first start (no cursor ever committed): whatever the ring holds
    is shipped and nothing counts as lost, since it was never ours to ship. For a new run of the
    server (a restart, new run_id) the caller passes ``-1``: ids restart at 0, so entries of the
    new run that already rotated out are reported as lost.
    """
    if last_id is None:
        return list(entries), None
    expected_first = last_id + 1
    new = [e for e in entries if e["id"] >= expected_first]
    if not new:
        return new, None
    oldest = new[0]["id"]
    if oldest > expected_first:
        return new, (expected_first, oldest - 1)
    return new, None


# ---------------------------------------------------------------------------------------------
# LATENCY LATEST


def parse_latency_latest(reply: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """``[[event, unix_time, latest_ms, max_ms(, sum_ms, count)], ...]`` -> dicts (sorted by name)."""
    out: list[dict[str, Any]] = []
    bad: list[Any] = []
    if not isinstance(reply, list | tuple):
        return out, [reply]
    for item in reply:
        if not isinstance(item, list | tuple) or len(item) < 4:
            bad.append(item)
            continue
        name = _s(item[0])
        ts, latest, mx = _int(item[1]), _int(item[2]), _int(item[3])
        if not name or ts is None or latest is None or mx is None:
            bad.append(item)
            continue
        d: dict[str, Any] = {"event": name, "time": ts, "latest_ms": latest, "max_ms": mx}
        if len(item) >= 6:  # Valkey 8.1+: sum and number of spikes
            d["sum_ms"] = _int(item[4])
            d["count"] = _int(item[5])
        out.append(d)
    out.sort(key=lambda d: (d["time"], d["event"]))
    return out, bad


def latency_events(
    spikes: list[dict[str, Any]],
    last: dict[str, int],
    *,
    origin: str,
    run_id: str,
    role: str | None = None,
) -> tuple[list[Event], dict[str, int]]:
    """One ``latency_spike`` event per event name whose latest timestamp moved since ``last``.

    Returns the events and the new cursor ``{event_name: last_timestamp}``.
    """
    events: list[Event] = []
    cursor = dict(last)
    for sp in spikes:
        name, ts = sp["event"], sp["time"]
        if last.get(name) is not None and ts <= last[name]:
            continue
        fields = {k: v for k, v in sp.items() if k not in ("event", "time")}
        fields = {"event_name": name, **fields, "run_id": run_id}
        ev = make_event(
            timestamp=_epoch_micro(ts, 0),
            source="latency",
            category="latency",
            event="latency_spike",
            level="warning",
            role=role,
            message=f"latency spike in {name}: {sp['latest_ms']} ms (max {sp['max_ms']} ms)",
            fields=fields,
        )
        ev["origin"] = origin
        ev["id"] = event_id(origin, f"{name}:{ts}")
        events.append(ev)
        cursor[name] = ts
    return events, cursor


# ---------------------------------------------------------------------------------------------
# ACL LOG


def _pairs(item: Any) -> dict[str, Any] | None:
    """RESP3 map or RESP2 flat key/value list -> dict with str keys."""
    if isinstance(item, dict):
        return {_s(k): v for k, v in item.items()}
    if isinstance(item, list | tuple) and len(item) % 2 == 0:
        return {_s(item[i]): item[i + 1] for i in range(0, len(item), 2)}
    return None


def _client_info_field(info: str, key: str) -> str | None:
    for part in info.split(" "):
        if part.startswith(key + "="):
            return part[len(key) + 1 :]
    return None


def parse_acl_log(reply: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """ACL LOG reply -> entries (newest first, as Redis returns them) and unparseable items."""
    out: list[dict[str, Any]] = []
    bad: list[Any] = []
    if not isinstance(reply, list | tuple):
        return out, [reply]
    for item in reply:
        d = _pairs(item)
        if d is None or "reason" not in d:
            bad.append(item)
            continue
        info = _s(d.get("client-info", ""))
        e: dict[str, Any] = {
            "count": _int(d.get("count")) or 1,
            "reason": _s(d.get("reason")),
            "context": _s(d.get("context")),
            "object": _s(d.get("object")),
            "username": _s(d.get("username")),
            "age_seconds": _float(d.get("age-seconds")),
            "client_addr": _client_info_field(info, "addr"),
            "client_name": _client_info_field(info, "name"),
            "client_user": _client_info_field(info, "user"),
        }
        if "entry-id" in d:
            e["entry_id"] = _int(d.get("entry-id"))
            e["created_ms"] = _int(d.get("timestamp-created"))
            e["updated_ms"] = _int(d.get("timestamp-last-updated"))
        out.append(e)
    return out, bad


def _acl_fp(e: dict[str, Any]) -> str:
    return "\x1f".join((e["reason"], e["context"], e["object"], e["username"]))


def acl_log_events(
    entries: list[dict[str, Any]],
    cursor: dict[str, Any] | None,
    *,
    origin: str,
    run_id: str,
    now_ms: int,
    role: str | None = None,
) -> tuple[list[Event], dict[str, Any]]:
    """New ACL LOG entries (and new occurrences grouped into an existing entry) -> events.

    Cursor, 7.2+ (``entry-id`` present): ``{"mode": "id", "last_entry_id", "counts": {id: count}}``;
    an entry with a higher id is new, a known id whose count rose reports the extra occurrences.

    Fallback, 6.x/7.0: ``{"mode": "fp", "seen": [[fingerprint, count, updated_ms], ...]}`` where
    ``updated_ms`` is ``now_ms - age``. An entry matches a remembered one with the same
    (reason, context, object, username) that was last updated no later than it (1.5 s of slack
    for the rounding of age); the count difference is what is new. Redis groups equal entries
    within 60 s, so this is exact except when the ring drops entries between two polls.
    """
    entries_old_first = list(reversed(entries))
    events: list[Event] = []
    has_ids = bool(entries) and all(e.get("entry_id") is not None for e in entries)
    if has_ids or (not entries and (cursor or {}).get("mode") == "id"):
        prev = cursor if cursor and cursor.get("mode") == "id" else {"last_entry_id": -1, "counts": {}}
        last_id = prev.get("last_entry_id", -1)
        counts: dict[str, int] = {str(k): int(v) for k, v in (prev.get("counts") or {}).items()}
        new_counts: dict[str, int] = {}
        for e in entries_old_first:
            eid = e["entry_id"]
            known = counts.get(str(eid))
            if eid > last_id:
                delta = e["count"]
            elif known is not None and e["count"] > known:
                delta = e["count"] - known
            else:
                delta = 0
            new_counts[str(eid)] = e["count"]
            if delta > 0:
                ts_ms = e.get("updated_ms") or e.get("created_ms") or now_ms
                events.append(
                    _acl_event(
                        e,
                        delta,
                        origin=origin,
                        run_id=run_id,
                        ts_ms=ts_ms,
                        role=role,
                        position=f"{eid}:{e['count']}",
                    )
                )
            last_id = max(last_id, eid)
        return events, {"mode": "id", "last_entry_id": last_id, "counts": new_counts}

    seen: list[list[Any]] = [list(s) for s in ((cursor or {}).get("seen") or []) if len(s) == 3]
    used = [False] * len(seen)
    new_seen: list[list[Any]] = []
    for e in entries_old_first:
        fp = _acl_fp(e)
        age_ms = int((e["age_seconds"] or 0.0) * 1000)
        updated = now_ms - age_ms
        match = None
        for i, (sfp, _scount, supd) in enumerate(seen):
            if not used[i] and sfp == fp and supd <= updated + 1500:
                match = i  # keep scanning: the newest remembered one that fits
        if match is not None:
            used[match] = True
            delta = e["count"] - int(seen[match][1])
        else:
            delta = e["count"]
        new_seen.append([fp, e["count"], updated])
        if delta > 0:
            events.append(
                _acl_event(
                    e,
                    delta,
                    origin=origin,
                    run_id=run_id,
                    ts_ms=updated,
                    role=role,
                    position=f"{fp}:{e['count']}:{updated // 1000}",
                )
            )
    return events, {"mode": "fp", "seen": new_seen}


def _acl_event(
    e: dict[str, Any], delta: int, *, origin: str, run_id: str, ts_ms: int, role: str | None, position: str
) -> Event:
    fields = {
        "reason": e["reason"],
        "context": e["context"],
        "object": e["object"],
        "username": e["username"],
        "count": e["count"],
        "new_count": delta,
        "client_addr": e.get("client_addr"),
        "client_name": e.get("client_name"),
        "client_user": e.get("client_user"),
        "run_id": run_id,
    }
    if e.get("entry_id") is not None:
        fields["entry_id"] = e["entry_id"]
    what = {
        "auth": f"authentication failed for user {e['username']!r}",
        "command": f"user {e['username']!r} denied command {e['object']!r}",
        "key": f"user {e['username']!r} denied key {e['object']!r}",
        "channel": f"user {e['username']!r} denied channel {e['object']!r}",
    }.get(e["reason"], f"ACL denial ({e['reason']}) for user {e['username']!r}")
    ev = make_event(
        timestamp=_epoch_ms(ts_ms),
        source="acl",
        category="security",
        event="acl_denied",
        level="warning",
        role=role,
        message=f"{what} from {e.get('client_addr') or '?'}" + (f" ({delta} times)" if delta > 1 else ""),
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, position)
    return ev


# ---------------------------------------------------------------------------------------------
# CONFIG GET * drift


def parse_config_get(reply: Any) -> dict[str, str] | None:
    """``CONFIG GET *`` (flat list in RESP2, map in RESP3) -> {name: value}; ``None`` if malformed."""
    d = _pairs(reply)
    if d is None:
        return None
    return {k: _s(v) for k, v in d.items()}


def secret_digest(value: str, salt: str) -> str:
    """What a checkpoint stores for a secret value: a salted hash, enough to see it changed."""
    h = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16, key=salt.encode("utf-8")[:64])
    return "secret:" + h.hexdigest()


def config_snapshot(values: dict[str, str], salt: str) -> dict[str, str]:
    """The snapshot to persist: secret values replaced by their salted digest (never stored)."""
    return {
        k: ((secret_digest(v, salt) if v else "") if is_secret_param(k) else v) for k, v in values.items()
    }


def config_changes(
    old: dict[str, str],
    new: dict[str, str],
    *,
    origin: str,
    run_id: str,
    observed_ms: int,
    role: str | None = None,
) -> list[Event]:
    """One ``config_changed`` event per parameter added, removed or changed between snapshots.

    Both snapshots come from :func:`config_snapshot`, so secrets compare as digests and are
    reported as ``(redacted)``; the value never reaches an event.
    """
    events: list[Event] = []
    for name in sorted(set(old) | set(new)):
        o, n = old.get(name), new.get(name)
        if o == n:
            continue
        secret = is_secret_param(name)
        if secret:  # snapshots hold "" or a digest: show only whether a value is set
            shown_o = None if o is None else (REDACTED if o else "")
            shown_n = None if n is None else (REDACTED if n else "")
        else:
            shown_o, shown_n = o, n
        fields: dict[str, Any] = {
            "parameter": name,
            "old": shown_o,
            "new": shown_n,
            "secret": secret,
            "run_id": run_id,
        }
        change = "added" if o is None else "removed" if n is None else "changed"
        fields["change"] = change
        msg = (
            f"config {name} changed (secret value not shown)"
            if secret
            else f"config {name} {change}: {o!r} -> {n!r}"
        )
        ev = make_event(
            timestamp=_epoch_ms(observed_ms),
            source="config",
            category="config",
            event="config_changed",
            level="notice",
            role=role,
            message=msg,
            fields=fields,
        )
        ev["origin"] = origin
        digest = hashlib.blake2b(f"{o}\x00{n}".encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        ev["id"] = event_id(origin, f"{name}:{observed_ms}:{digest}")
        events.append(ev)
    return events


# ---------------------------------------------------------------------------------------------
# INFO identity


def parse_info(text: Any) -> dict[str, str]:
    """INFO text (``key:value`` lines, ``# Section`` headers) -> {key: value}."""
    out: dict[str, str] = {}
    for line in _s(text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v
    return out


def identity_from_info(info: dict[str, str]) -> dict[str, Any]:
    """The fields that identify an instance: run_id, role, server, version, port, master."""
    role_raw = info.get("role", "")
    role = {"master": "master", "slave": "replica", "replica": "replica", "primary": "master"}.get(role_raw)
    mode = info.get("redis_mode") or info.get("server_mode")
    if mode == "sentinel":
        role = "sentinel"
    server = info.get("server_name") or "redis"
    version = info.get("valkey_version") if server == "valkey" else info.get("redis_version")
    ident: dict[str, Any] = {
        "run_id": info.get("run_id", ""),
        "role": role,
        "server": server,
        "version": version or info.get("redis_version"),
        "tcp_port": _int(info.get("tcp_port")),
        "process_id": _int(info.get("process_id")),
        "mode": mode,
        "master_host": info.get("master_host") or None,
        "master_port": _int(info.get("master_port")),
        "uptime_s": _int(info.get("uptime_in_seconds")),
    }
    return ident


def version_tuple(version: str | None) -> tuple[int, ...]:
    out: list[int] = []
    for part in (version or "").split("."):
        n = _int(part)
        if n is None:
            break
        out.append(n)
    return tuple(out)


def role_changed_event(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    origin: str,
    observed_ms: int,
) -> Event:
    """``role_changed`` (category failover): a replica promoted, a master demoted."""
    fields: dict[str, Any] = {"old_role": old.get("role"), "new_role": new.get("role")}
    # master_* only when there is one (the schema types master_port as a number or string)
    for key, src in (("master_host", new), ("master_port", new)):
        if src.get(key) is not None:
            fields[key] = src[key]
    for key in ("master_host", "master_port"):
        if old.get(key) is not None:
            fields["old_" + key] = old[key]
    fields["run_id"] = new.get("run_id")
    ev = make_event(
        timestamp=_epoch_ms(observed_ms),
        source="agent",
        category="failover",
        event="role_changed",
        level="warning",
        role=new.get("role"),
        message=f"role changed from {old.get('role')} to {new.get('role')}"
        + (f" (master {new.get('master_host')}:{new.get('master_port')})" if new.get("master_host") else ""),
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, f"role:{observed_ms}:{old.get('role')}->{new.get('role')}")
    return ev


def restarted_event(old_run_id: str, new: dict[str, Any], *, origin: str, observed_ms: int) -> Event:
    """The instance came back with a new run_id: slowlog/latency/ACL ids restarted."""
    ev = make_event(
        timestamp=_epoch_ms(observed_ms),
        source="agent",
        category="startup",
        event="instance_restarted",
        level="notice",
        role=new.get("role"),
        message=f"{new.get('server')} {new.get('version')} restarted: run_id {old_run_id[:8]} -> "
        f"{str(new.get('run_id'))[:8]}; entries logged after the last poll of the old run are gone",
        fields={
            "old_run_id": old_run_id,
            "run_id": new.get("run_id"),
            "version": new.get("version"),
            "server": new.get("server"),
            "uptime_s": new.get("uptime_s"),
        },
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, f"restart:{old_run_id}->{new.get('run_id')}")
    return ev


__all__ = [
    "REDACTED",
    "REDACT_MODES",
    "SECRET_CONFIG_PARAMS",
    "SELF_CLIENT_NAME",
    "acl_log_events",
    "config_changes",
    "config_snapshot",
    "format_epoch",
    "identity_from_info",
    "is_secret_param",
    "is_self_entry",
    "key_positions",
    "latency_events",
    "new_log_entries",
    "parse_acl_log",
    "parse_config_get",
    "parse_info",
    "parse_latency_latest",
    "parse_log_entry",
    "parse_log_reply",
    "redact_args",
    "redact_secrets",
    "restarted_event",
    "role_changed_event",
    "secret_digest",
    "slowlog_event",
    "slowlog_lost_event",
    "slowlog_timestamp",
    "unparsed_event",
    "version_tuple",
]
