"""The grammar of Sentinel events: ``<type> <instance details> [@ <master>] [extra]``.

``sentinelEvent()`` (redis-log-formats.md §2.6; sentinel.c:648-703 @ 7.4.1, identical in
Valkey 8) logs ``<type> <msg>`` where, for events about an instance, ``msg`` begins with
``<instance-type> <name> <ip> <port>`` and, when the instance is not a master,
`` @ <master-name> <master-ip> <master-port>``; free text may follow. A few events carry no
instance (``+new-epoch``, ``+vote-for-leader``, ``+switch-master``, ``+tilt``, scripts).

This module turns one such message into (category, event, fields). Event names are
``sentinel_`` + the type without its sign, with ``-`` replaced by ``_``; a ``-`` type whose name
does not already say what happened gets a suffix (``-sdown`` -> ``sentinel_sdown_cleared``,
``-monitor`` -> ``sentinel_monitor_removed``). Unknown types still parse (a future Sentinel
event is a ``sentinel_<name>`` event of category ``other``), never ``unrecognized``.
"""

from __future__ import annotations

import re
from typing import Any

#: type -> (category, event). Failover: every step of the failover state machine (§2.6 table).
EVENTS: dict[str, tuple[str, str]] = {
    "+sdown": ("failover", "sentinel_sdown"),
    "-sdown": ("failover", "sentinel_sdown_cleared"),
    "+odown": ("failover", "sentinel_odown"),
    "-odown": ("failover", "sentinel_odown_cleared"),
    "+new-epoch": ("failover", "sentinel_new_epoch"),
    "+try-failover": ("failover", "sentinel_try_failover"),
    "+vote-for-leader": ("failover", "sentinel_vote_for_leader"),
    "+elected-leader": ("failover", "sentinel_elected_leader"),
    "-failover-abort-not-elected": ("failover", "sentinel_failover_abort_not_elected"),
    "+failover-state-select-slave": ("failover", "sentinel_failover_state_select_slave"),
    "-failover-abort-no-good-slave": ("failover", "sentinel_failover_abort_no_good_slave"),
    "+selected-slave": ("failover", "sentinel_selected_slave"),
    "+failover-state-send-slaveof-noone": ("failover", "sentinel_failover_state_send_slaveof_noone"),
    "-failover-abort-slave-timeout": ("failover", "sentinel_failover_abort_slave_timeout"),
    "+failover-state-wait-promotion": ("failover", "sentinel_failover_state_wait_promotion"),
    "+promoted-slave": ("failover", "sentinel_promoted_slave"),
    "+failover-state-reconf-slaves": ("failover", "sentinel_failover_state_reconf_slaves"),
    "+slave-reconf-sent": ("failover", "sentinel_slave_reconf_sent"),
    "+slave-reconf-sent-be": ("failover", "sentinel_slave_reconf_sent_be"),
    "-slave-reconf-sent-timeout": ("failover", "sentinel_slave_reconf_sent_timeout"),
    "+slave-reconf-inprog": ("failover", "sentinel_slave_reconf_inprog"),
    "+slave-reconf-done": ("failover", "sentinel_slave_reconf_done"),
    "+failover-end-for-timeout": ("failover", "sentinel_failover_end_for_timeout"),
    "+failover-end": ("failover", "sentinel_failover_end"),
    "+switch-master": ("failover", "sentinel_switch_master"),
    "+tilt": ("failover", "sentinel_tilt"),
    "-tilt": ("failover", "sentinel_tilt_cleared"),
    "+convert-to-slave": ("failover", "sentinel_convert_to_slave"),
    # configuration of what Sentinel monitors
    "+monitor": ("config", "sentinel_monitor"),
    "-monitor": ("config", "sentinel_monitor_removed"),
    "+set": ("config", "sentinel_set"),
    "+config-update-from": ("config", "sentinel_config_update_from"),
    "+reset-master": ("config", "sentinel_reset_master"),
    # topology discovery and role changes
    "+slave": ("replication", "sentinel_slave"),
    "+reboot": ("replication", "sentinel_reboot"),
    "+role-change": ("replication", "sentinel_role_change"),
    "-role-change": ("replication", "sentinel_role_change_during_failover"),
    "+fix-slave-config": ("replication", "sentinel_fix_slave_config"),
    "+sentinel": ("connection", "sentinel_sentinel"),
    "+sentinel-address-switch": ("connection", "sentinel_sentinel_address_switch"),
    "+sentinel-invalid-addr": ("connection", "sentinel_sentinel_invalid_addr"),
    "+sentinel-address-update": ("connection", "sentinel_sentinel_address_update"),
    "-cmd-link-reconnection": ("connection", "sentinel_cmd_link_reconnection"),
    "-pubsub-link-reconnection": ("connection", "sentinel_pubsub_link_reconnection"),
    "-dup-sentinel": ("connection", "sentinel_dup_sentinel"),
    # notification / reconfig scripts
    "-script-error": ("other", "sentinel_script_error"),
    "-script-timeout": ("other", "sentinel_script_timeout"),
    "+script-child": ("other", "sentinel_script_child"),
    "-script-child": ("other", "sentinel_script_child_exited"),
    # Sentinel v1 (2.6) only
    "+failover-detected": ("failover", "sentinel_failover_detected"),
    "+failover-triggered": ("failover", "sentinel_failover_triggered"),
    "+failover-takedown": ("failover", "sentinel_failover_takedown"),
    "+failover-state-wait-start": ("failover", "sentinel_failover_state_wait_start"),
    "+demote-old-slave": ("failover", "sentinel_demote_old_slave"),
    "+redirect-to-master": ("failover", "sentinel_redirect_to_master"),
    "-failover-abort-master-is-back": ("failover", "sentinel_failover_abort_master_is_back"),
    "-failover-abort-race": ("failover", "sentinel_failover_abort_race"),
    "-failover-abort-x-sdown": ("failover", "sentinel_failover_abort_x_sdown"),
    "-promotion-timeout": ("failover", "sentinel_promotion_timeout"),
    "-slave-reconf-undo": ("failover", "sentinel_slave_reconf_undo"),
    "-slave-restart-as-master": ("failover", "sentinel_slave_restart_as_master"),
    "-demote-flag-cleared": ("failover", "sentinel_demote_flag_cleared"),
}

_TYPE_RE = re.compile(r"[+-][a-z][a-z0-9-]*")
_INSTANCE_RE = re.compile(
    r"(master|slave|replica|primary|sentinel) (\S+) (\S+) (\d+)(?: @ (\S+) (\S+) (\d+))?(?: (.*))?", re.S
)
_QUORUM_RE = re.compile(r"#quorum (\d+)/(\d+)")
assert all(_TYPE_RE.fullmatch(t) for t in EVENTS), "parse_event skips the type regex for known types"


def is_sentinel_event(message: str) -> bool:
    """Cheap test used for lines with no role (2.x, signal handler): a KNOWN event type."""
    if message[:1] not in ("+", "-"):
        return False
    sp = message.find(" ")
    return (message if sp < 0 else message[:sp]) in EVENTS


def _int(s: str) -> int | str:
    try:
        return int(s)
    except ValueError:
        return s


def parse_event(message: str) -> tuple[str, str, dict[str, Any]] | None:
    """(category, event, fields) of a Sentinel event message, ``None`` if it is not one."""
    sp = message.find(" ")
    etype = message if sp < 0 else message[:sp]
    known = EVENTS.get(etype)  # every known type is a valid one (asserted below EVENTS): no regex
    if known is None and _TYPE_RE.fullmatch(etype) is None:
        return None
    rest = "" if sp < 0 else message[sp + 1 :]
    if known is None:
        name = etype[1:].replace("-", "_")
        known = ("other", "sentinel_" + name if etype[0] == "+" else "sentinel_" + name + "_minus")
    category, event = known
    fields: dict[str, Any] = {"sentinel_event": etype}
    if etype == "+switch-master":
        parts = rest.split(" ")
        if len(parts) >= 5:
            fields.update(
                master_name=parts[0],
                old_ip=parts[1],
                old_port=_int(parts[2]),
                new_ip=parts[3],
                new_port=_int(parts[4]),
            )
        elif rest:
            fields["detail"] = rest
        return category, event, fields
    if etype == "+new-epoch":
        fields["epoch"] = _int(rest.strip())
        return category, event, fields
    if etype == "+vote-for-leader":
        parts = rest.split(" ")
        if len(parts) >= 2:
            fields["leader_id"] = parts[0]
            fields["epoch"] = _int(parts[1])
        elif rest:
            fields["detail"] = rest
        return category, event, fields
    m = _INSTANCE_RE.match(rest)
    if m is None:
        if rest:
            fields["detail"] = rest  # +tilt "#tilt mode entered", scripts, link errors
        return category, event, fields
    itype, name, ip, port, mname, mip, mport, extra = m.groups()
    fields["instance_type"] = itype
    fields["instance_name"] = name
    fields["ip"] = ip
    fields["port"] = int(port)
    if mname is not None:
        fields["master_name"] = mname
        fields["master_ip"] = mip
        fields["master_port"] = int(mport)
    elif itype in ("master", "primary"):
        fields["master_name"] = name
    if extra:
        fields["detail"] = extra
        if etype == "+odown":
            q = _QUORUM_RE.search(extra)
            if q is not None:
                fields["quorum_votes"] = int(q[1])
                fields["quorum"] = int(q[2])
        elif etype == "+monitor" and extra.startswith("quorum "):
            fields["quorum"] = _int(extra[7:].strip())
        elif etype == "+set":
            opt, _, value = extra.partition(" ")
            fields["option"] = opt
            if value:
                fields["value"] = value
        elif etype == "+sentinel-address-switch":
            parts = extra.split(" ")
            if len(parts) >= 6 and parts[0] == "ip" and parts[2] == "port" and parts[4] == "for":
                fields.update(new_ip=parts[1], new_port=_int(parts[3]), sentinel_id=parts[5])
        elif etype in ("+role-change", "-role-change") and extra.startswith("new reported role is "):
            fields["reported_role"] = extra[21:].strip()
    return category, event, fields
