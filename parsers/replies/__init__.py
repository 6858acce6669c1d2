"""Redis replies -> events: SLOWLOG, COMMANDLOG, LATENCY LATEST, ACL LOG, CONFIG GET, INFO.

Pure and total, like every parser: replies in (the raw RESP2 or RESP3 shapes redis-py returns
when no response callback is applied: ``bytes``, ``int``, lists, dicts), events out. No
sockets, no clocks (the caller passes ``now`` where the data has no timestamp of its own), and
no exception escapes for any input: a reply that does not have the expected shape becomes an
``unparsed_reply`` event carrying its ``repr`` (bounded), so nothing is dropped silently.

Why the ids and timestamps are derived only from the data: a batch re-sent after a crash must be
byte-identical, so the event id is ``event_id(origin, <position in the reply stream>)``.

One module per reply kind, plus the redaction policy they share:

- ``slowlog``: SLOWLOG GET and COMMANDLOG GET entries, loss events, the poller's own entries;
- ``latency``: LATENCY LATEST spikes;
- ``acl_log``: ACL LOG denials;
- ``config``: CONFIG GET * snapshots and drift;
- ``info``: INFO identity, role changes and restarts;
- ``redaction``: secret and user-data redaction of command arguments;
- ``common``: the total conversions they all use, and the ``unparsed_reply`` event.

Import from ``parsers.replies``: the names below are its interface.
"""

from __future__ import annotations

from parsers.events import format_epoch

from .acl_log import acl_log_events, parse_acl_log
from .common import unparsed_event
from .config import config_changes, config_snapshot, parse_config_get, secret_digest
from .info import identity_from_info, parse_info, restarted_event, role_changed_event, version_tuple
from .latency import latency_events, parse_latency_latest
from .redaction import (
    REDACT_MODES,
    REDACTED,
    SECRET_CONFIG_PARAMS,
    is_secret_param,
    key_positions,
    redact_args,
    redact_secrets,
)
from .slowlog import (
    SELF_CLIENT_NAME,
    is_self_entry,
    new_log_entries,
    parse_log_entry,
    parse_log_reply,
    slowlog_event,
    slowlog_lost_event,
    slowlog_timestamp,
)

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
