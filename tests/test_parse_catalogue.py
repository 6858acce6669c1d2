"""The catalogue: every message issue 2's "Classification" list names, in each wording.

Messages are the exact texts Redis / Valkey write (real lines from sample-logs/ or the
format strings cited in redis-log-formats.md §2 with their arguments filled in).
"""

from __future__ import annotations

import pytest

from parsers.catalogue import classify, known_events
from parsers.events import CATEGORIES

CLIENT = (
    "id=3 addr=127.0.0.1:58742 laddr=127.0.0.1:6502 fd=8 name=sentinel-3656161d-cmd age=0 idle=0 flags=x "
    "db=0 sub=0 psub=0 ssub=0 multi=4 qbuf=202 qbuf-free=20272 argv-mem=4 multi-mem=169 rbs=1024 rbp=0 "
    "obl=45 oll=0 omem=0 tot-mem=22373 events=r cmd=exec user=default redir=-1 resp=2"
)

CASES = [
    # startup
    ("oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo", "startup", "server_starting"),
    ("oO0OoO0OoO0Oo Valkey is starting oO0OoO0OoO0Oo", "startup", "server_starting"),
    (
        "Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=26406, just started",
        "startup",
        "server_version",
    ),
    (
        "Valkey version=9.1.2, bits=64, commit=00000000, modified=1, pid=8541, just started",
        "startup",
        "server_version",
    ),
    ("Server started, Redis version 3.2.12", "startup", "server_version"),
    ("Server initialized", "startup", "server_initialized"),
    ("Ready to accept connections", "startup", "ready_to_accept_connections"),
    ("Ready to accept connections tcp", "startup", "ready_to_accept_connections"),
    ("The server is now ready to accept connections on port 6379", "startup", "ready_to_accept_connections"),
    ("Running mode=standalone, port=6379.", "startup", "running_mode"),
    ("Running mode=sentinel, port=26379.", "startup", "running_mode"),
    ("Configuration loaded", "startup", "configuration_loaded"),
    (
        "Warning: no config file specified, using the default config. In order to specify a config file use "
        "redis-server /path/to/redis.conf",
        "startup",
        "no_config_file",
    ),
    (
        "WARNING overcommit_memory is set to 0! Background save may fail under low memory condition. To fix this "
        "issue add 'vm.overcommit_memory = 1' to /etc/sysctl.conf",
        "startup",
        "overcommit_memory_warning",
    ),
    (
        "WARNING Memory overcommit must be enabled! Without it, a background save or replication may fail under low "
        "memory condition.",
        "startup",
        "overcommit_memory_warning",
    ),
    (
        "WARNING you have Transparent Huge Pages (THP) support enabled in your kernel. This will create latency "
        "and memory usage issues with Redis.",
        "startup",
        "transparent_huge_pages_warning",
    ),
    (
        "WARNING: The TCP backlog setting of 511 cannot be enforced because /proc/sys/net/core/somaxconn is set to "
        "the lower value of 128.",
        "startup",
        "tcp_backlog_warning",
    ),
    # shutdown
    ("Received SIGTERM scheduling shutdown...", "shutdown", "shutdown_signal_received"),
    ("Received SIGINT scheduling shutdown...", "shutdown", "shutdown_signal_received"),
    ("Received SIGTERM, scheduling shutdown...", "shutdown", "shutdown_signal_received"),
    ("Received shutdown signal during loading, scheduling shutdown.", "shutdown", "shutdown_signal_received"),
    ("User requested shutdown...", "shutdown", "shutdown_requested"),
    (f"User requested shutdown... (user request from '{CLIENT}')", "shutdown", "shutdown_requested"),
    ("Saving the final RDB snapshot before exiting.", "shutdown", "saving_final_snapshot"),
    ("Redis is now ready to exit, bye bye...", "shutdown", "ready_to_exit"),
    ("Valkey is now ready to exit, bye bye...", "shutdown", "ready_to_exit"),
    ("Sentinel is now ready to exit, bye bye...", "shutdown", "ready_to_exit"),
    # config
    ("CONFIG REWRITE executed with success.", "config", "config_rewrite"),
    ("CONFIG REWRITE failed: Permission denied", "config", "config_rewrite_failed"),
    # replication, replica side
    ("Connecting to MASTER 127.0.0.1:6501", "replication", "connecting_to_master"),
    ("Connecting to PRIMARY 127.0.0.1:57319", "replication", "connecting_to_master"),
    ("MASTER <-> REPLICA sync started", "replication", "sync_started"),
    ("PRIMARY <-> REPLICA sync started", "replication", "sync_started"),
    ("MASTER <-> SLAVE sync started", "replication", "sync_started"),
    (
        "Full resync from master: db7a0688ff6e5e1035efb222ffe157faa3d51bf1:156",
        "replication",
        "full_resync_from_master",
    ),
    (
        "Full resync from primary: d39060eeea2fb2f8faf675ff19972fc11694f968:0",
        "replication",
        "full_resync_from_master",
    ),
    ("Successful partial resynchronization with master.", "replication", "partial_resync_succeeded"),
    ("Successful partial resynchronization with primary.", "replication", "partial_resync_succeeded"),
    (
        "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.",
        "replication",
        "partial_resync_accepted_by_master",
    ),
    ("MASTER <-> REPLICA sync: Finished with success", "replication", "sync_finished"),
    ("Connection with master lost.", "replication", "master_link_lost"),
    ("Connection with primary lost.", "replication", "master_link_lost"),
    (
        "MASTER MODE enabled (user request from 'id=3 addr=127.0.0.1:58742 cmd=exec user=default')",
        "replication",
        "master_mode_enabled",
    ),
    (
        "PRIMARY MODE enabled (user request from 'id=5 addr=127.0.0.1:58674')",
        "replication",
        "master_mode_enabled",
    ),
    (
        "MASTER MODE enabled (failover request from 'id=7 addr=10.0.0.1:4000')",
        "replication",
        "master_mode_enabled",
    ),
    (f"REPLICAOF 127.0.0.1:6502 enabled (user request from '{CLIENT}')", "replication", "replicaof_enabled"),
    (
        "SLAVE OF 10.0.0.5:6379 enabled (user request from 'id=3 addr=10.0.0.9:5000')",
        "replication",
        "replicaof_enabled",
    ),
    ("SLAVE OF 10.0.0.5:6379 enabled (user request)", "replication", "replicaof_enabled"),
    # replication, master side
    ("Replica 127.0.0.1:6502 asks for synchronization", "replication", "replica_sync_requested"),
    ("Slave 10.0.0.6:6379 asks for synchronization", "replication", "replica_sync_requested"),
    ("Full resync requested by replica 127.0.0.1:39759", "replication", "full_resync_requested"),
    (
        "Partial resynchronization request from 127.0.0.1:39759 accepted. Sending 2810 bytes of backlog starting "
        "from offset 13428.",
        "replication",
        "partial_resync_accepted",
    ),
    (
        "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for 'a', my replication IDs "
        "are 'b' and 'c')",
        "replication",
        "partial_resync_rejected",
    ),
    ("Synchronization with replica 127.0.0.1:39759 succeeded", "replication", "replica_sync_succeeded"),
    ("Connection with replica 127.0.0.1:39759 lost.", "replication", "replica_link_lost"),
    ("Connection with slave 10.0.0.6:6379 lost.", "replication", "replica_link_lost"),
    # persistence
    ("Background saving started by pid 10960", "persistence", "bgsave_started"),
    ("Background saving terminated with success", "persistence", "bgsave_done"),
    ("Background saving error", "persistence", "bgsave_failed"),
    ("Background saving terminated by signal 9", "persistence", "bgsave_failed"),
    ("Can't save in background: fork: Cannot allocate memory", "persistence", "bgsave_fork_failed"),
    ("Background append only file rewriting started by pid 10981", "persistence", "aof_rewrite_started"),
    ("Background AOF rewrite finished successfully", "persistence", "aof_rewrite_done"),
    ("Background AOF rewrite terminated with error", "persistence", "aof_rewrite_failed"),
    (
        "Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync "
        "to complete, this may slow down Redis.",
        "persistence",
        "aof_fsync_slow",
    ),
    (
        "Write error while saving DB to the disk(rdbSaveRio): No space left on device",
        "persistence",
        "rdb_write_error",
    ),
    ("Error writing to the AOF file: No space left on device", "persistence", "aof_write_error"),
    # cluster
    ("Cluster state changed: fail", "cluster", "cluster_state_changed"),
    ("Cluster state changed: ok", "cluster", "cluster_state_changed"),
    (
        "FAIL message received from 3e3a6cb0d9a9a87168e266b0a0b24026c0aae3f0 () about "
        "8d2f1b2c3a4e5f60718293a4b5c6d7e8f9a0b1c2 ()",
        "cluster",
        "fail_message_received",
    ),
    (
        "FAIL message received from 3e3a6cb0d9a9a87168e266b0a0b24026c0aae3f0 about "
        "8d2f1b2c3a4e5f60718293a4b5c6d7e8f9a0b1c2",
        "cluster",
        "fail_message_received",
    ),
    (
        "Marking node 8d2f1b2c3a4e5f60718293a4b5c6d7e8f9a0b1c2 () as failing (quorum reached).",
        "cluster",
        "node_marked_failing",
    ),
    ("Starting a failover election for epoch 7.", "cluster", "election_started"),
    ("Failover election won: I'm the new master.", "cluster", "election_won"),
    ("Failover election won: I'm the new primary.", "cluster", "election_won"),
    # security
    (
        "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is "
        "likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. "
        "Connection aborted.",
        "security",
        "possible_security_attack",
    ),
    (
        "Error loading ACL rule '+client|setinfo' for the user named 'shipper': Unknown command or category name in "
        "ACL",
        "security",
        "acl_rule_error",
    ),
    (
        "The user 'disabled-user' is disabled (there is no 'on' modifier in the user description). Make sure this is "
        "not a configuration error.",
        "security",
        "acl_user_disabled",
    ),
    # memory
    ("Out Of Memory allocating 1048576 bytes!", "memory", "out_of_memory"),
    (
        "WARNING: the new maxmemory value set via CONFIG SET (1048576) is smaller than the current memory usage "
        "(2097152). This will result in key eviction and/or the inability to accept new write commands depending on "
        "the maxmemory-policy.",
        "memory",
        "maxmemory_below_usage",
    ),
    (
        "WARNING: You specified a maxmemory value that is less than 1MB (current value is 1000 bytes). Are you sure "
        "this is what you really want?",
        "memory",
        "maxmemory_too_small",
    ),
]


@pytest.mark.parametrize("message, category, event", CASES, ids=[c[2] + ":" + c[0][:40] for c in CASES])
def test_named_message_is_classified(message, category, event):
    res = classify(message)
    assert res is not None, message
    assert res[:2] == (category, event)


def test_replicaof_records_the_client_that_asked():
    _, _, fields = classify(f"REPLICAOF 127.0.0.1:6502 enabled (user request from '{CLIENT}')")
    assert fields["master_host"] == "127.0.0.1" and fields["master_port"] == 6502
    assert fields["client_addr"] == "127.0.0.1:58742"
    assert fields["client_name"] == "sentinel-3656161d-cmd"
    assert fields["client_user"] == "default"
    assert fields["client_id"] == 3


def test_numeric_fields_are_numbers():
    _, _, f = classify(
        "Partial resynchronization request from 127.0.0.1:39759 accepted. Sending 2810 bytes of "
        "backlog starting from offset 13428."
    )
    assert f == {"replica": "127.0.0.1:39759", "backlog_bytes": 2810, "repl_offset": 13428}
    _, _, f = classify("DB loaded from disk: 0.012 seconds")
    assert f == {"seconds": 0.012}


def test_security_attack_with_address_records_the_peer():
    _, _, f = classify(
        "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands "
        "to Valkey. This is likely due to an attacker attempting to use Cross Protocol Scripting to "
        "compromise your Valkey instance. Connection from 127.0.0.1:43174 aborted."
    )
    assert f == {"client_ip": "127.0.0.1", "client_port": 43174}


def test_valkey_bio_thread_prefix_is_looked_through():
    res = classify("Replica bio thread: PRIMARY <-> REPLICA sync: receiving streamed RDB from primary with EOF to disk")
    assert res is not None
    assert res[:2] == ("replication", "sync_receiving_rdb") and res[2]["thread"] == "bio"


@pytest.mark.parametrize("message", ["", " ", "hello world", "12345", "MASTER", "Background", "+", "-x y"])
def test_unknown_messages_are_not_classified(message):
    assert classify(message) is None


def test_every_catalogue_event_has_a_known_category_and_a_snake_case_name():
    import re

    for category, event in known_events():
        assert category in CATEGORIES
        assert re.fullmatch(r"[a-z][a-z0-9_]*", event), event


# ---------------------------------------------------------------- the compiled classifier = the catalogue
# ``classify`` runs generated code (one function per first word: memo, wrapper, prefix tests, guards,
# fields built inline). These tests hold it to the catalogue's plain definition, written here as the
# interpreted loop: first word -> that word's rules in order (else the rules of a leading number),
# the wrappers, the generic rules; fields by ``fields_of``. No memo, no prefix test, no guard: those
# may only skip work, never change a result, and this is what shows it.

import random  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from parsers import catalogue_build as catalogue  # noqa: E402
from parsers.catalogue_support import fields_of  # noqa: E402
from parsers.line import parse_header  # noqa: E402


def reference_classify(message: str) -> tuple[str, str, dict[str, Any]] | None:
    sp = message.find(" ")
    word = message if sp < 0 else message[:sp]
    for prefix, key, value in catalogue._WRAPPERS:
        if message.startswith(prefix):
            res = reference_classify(message[len(prefix) :])
            if res is not None:
                res[2][key] = value
                return res
    rules = catalogue._BY_WORD.get(word)
    if rules is None and word[:1].isdigit():
        rules = catalogue._BY_WORD.get("<num>")
    for rule in [*(rules or []), *catalogue._GENERIC]:
        m = rule.regex.match(message)
        if m is not None:
            return rule.category, rule.event, fields_of(m, rule.groups, rule.has_client)
    return None


def same_as_reference(message: str) -> None:
    expected = reference_classify(message)
    for _ in range(2):  # the second time through the memo of constant messages
        got = classify(message)
        if expected is None:
            assert got is None, message
        else:
            assert got is not None, message
            assert got[:2] == expected[:2], message
            assert list(got[2].items()) == list(expected[2].items()), message  # same keys, same order
            assert all(type(got[2][k]) is type(v) for k, v in expected[2].items()), message


def _sample_messages() -> list[str]:
    """The message of every prefixed line of every sample log, and every raw line."""
    out: dict[str, None] = {}
    for path in sorted((Path(__file__).resolve().parent.parent / "sample-logs").glob("*/*.log")):
        for line in path.read_text("utf-8", "replace").split("\n"):
            header = parse_header(line.rstrip("\r"))
            out[line if header is None else header.message] = None
    return list(out)


SAMPLE_MESSAGES = _sample_messages()


def test_the_compiled_classifier_gives_the_catalogue_loops_result_for_every_sample_message() -> None:
    assert len(SAMPLE_MESSAGES) > 1000
    classified = 0
    for message in SAMPLE_MESSAGES + [c[0] for c in CASES]:
        same_as_reference(message)
        classified += reference_classify(message) is not None
    assert classified > 500  # the comparison covers real classifications, not only misses


@pytest.mark.parametrize(
    "message",
    [
        "Running mode=standalone, port=" + "9" * 5000 + ".",  # int() refuses > 4300 digits: kept as text
        "Fork CoW for RDB: current " + "1" * 4400 + " MB, peak 2 MB, average 1 MB",
        "DB loaded from disk: 1e999 seconds",
        "Replica bio thread: Replica bio thread: PRIMARY <-> REPLICA sync: Finished with success",
        "Dual channel replication: nothing known",
        "Replica bio thread: ",
        "Client closed connection",
        "Client closed connection id=1 addr=a id=x name=n\tuser=u user=v",
        "Client id=1 addr=1.2.3.4:5 closed for overcoming of output buffer limits.",
        f'Closing client that reached max query buffer length: {CLIENT} (qbuf initial bytes: "abc")',
        "Accepted 10.0.0.1:6379",
        "Accepted",
        "Accepted ",
        "123 changes in 60 seconds. Saving...",
        "12345678901234567890 clients connected (0 replicas), 1 bytes in use",
        "٣ changes in 60 seconds. Saving...",
        "Server initialized\n",
        "Server initializedX",
        "  Failed assertion: x",
        "abc voted for def 12",
    ],
)
def test_the_compiled_classifier_gives_the_catalogue_loops_result_on_corner_messages(message: str) -> None:
    same_as_reference(message)


@st.composite
def damaged_messages(draw: st.DrawFn) -> str:
    """A real message, then cut, spliced, with a digit run made huge, a character inserted, or a
    wrapper put in front."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    message = rng.choice(SAMPLE_MESSAGES)
    for _ in range(rng.randint(0, 3)):
        r = rng.random()
        i = rng.randrange(len(message) + 1)
        if r < 0.25:
            message = message[:i]
        elif r < 0.45:
            other = rng.choice(SAMPLE_MESSAGES)
            message = message[:i] + other[rng.randrange(len(other) + 1) :]
        elif r < 0.6:
            message = message[:i] + rng.choice(["9" * 4400, "0", "-1", "1.5"]) + message[i:]
        elif r < 0.8:
            message = message[:i] + rng.choice([" ", "\t", ")", "'", ":", "=", "\x00", "é", "٣"]) + message[i:]
        else:
            message = rng.choice([w[0] for w in catalogue._WRAPPERS]) + message
    return message


@settings(max_examples=400, deadline=None)
@given(message=damaged_messages())
def test_the_compiled_classifier_gives_the_catalogue_loops_result_on_damaged_real_messages(message: str) -> None:
    same_as_reference(message)


def test_the_checked_in_compiled_catalogue_is_what_the_rules_give() -> None:
    """parsers/catalogue_compiled.py is generated from parsers/rules/: a rule changed without
    running ``python -m parsers.catalogue_build`` would not be used by the parser."""
    assert catalogue.TARGET.read_text(encoding="utf-8") == catalogue.render(), (
        "parsers/catalogue_compiled.py is out of date: run python -m parsers.catalogue_build"
    )


def test_importing_the_classifier_compiles_no_rule_until_a_message_needs_it() -> None:
    """Start-up cost: the generated module holds each rule's regex as a stand-in that compiles it
    on first use; a fresh process that classified nothing has compiled none, and after one message
    only the rules that message was tried against are compiled."""
    import subprocess
    import sys

    code = (
        "import re, parsers.catalogue_compiled as c\n"
        "names = [n for n in vars(c) if '_match' in n]\n"
        "def compiled():\n"
        "    return sum(1 for n in names if not getattr(c, n).__qualname__.startswith('lazy_match'))\n"
        "print(len(names), compiled())\n"
        "c.classify('Background saving started by pid 28669')\n"
        "print(compiled())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    total, before, after = int(out[0]), int(out[1]), int(out[2])
    assert total > 200
    assert before == 0
    assert 1 <= after <= 5
