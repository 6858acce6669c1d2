"""Redaction of command arguments: secrets always, user data by mode (``none|keys|hash|drop``).

It lives apart from the SLOWLOG/COMMANDLOG parser because it is a policy, not a reply shape:
the slowlog is the one place where user data (keys, values) and credentials (AUTH, HELLO AUTH,
MIGRATE AUTH, CONFIG SET requirepass on servers older than 6.2.4 that did not redact) enter the
pipeline, and CONFIG drift uses the same notion of a secret parameter. Secrets are redacted
whatever the mode.
"""

from __future__ import annotations

import hashlib
import re

from .common import as_int

REDACTED = "(redacted)"
REDACT_MODES = ("none", "keys", "hash", "drop")


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
CONTAINER_COMMANDS = frozenset(
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
TRUNCATED_ARGS = re.compile(r"^\.\.\. \(\d+ more arguments\)$")


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
        numkeys = as_int(argv[at]) if at < n else None
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
    if cmd in CONTAINER_COMMANDS and n > 2 and (cmd, argv[1].lower()) in _CONTAINER_KEY_AT_2:
        return {2}
    return set()


def _kept_names(argv: list[str]) -> set[int]:
    """Arguments that are structure, not data, kept in ``keys``/``hash`` mode: the subcommand of
    container commands and CONFIG GET/SET parameter names."""
    n = len(argv)
    cmd = argv[0].lower() if argv else ""
    kept: set[int] = set()
    if cmd in CONTAINER_COMMANDS and n > 1:
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
        if a == REDACTED or TRUNCATED_ARGS.match(a):
            out.append(a)
        elif i in kept:
            out.append(a)
        elif i in keys:
            out.append(a if mode == "keys" else _hash(a))
        else:
            out.append(f"({_length_of(a)} bytes)")
    return out
