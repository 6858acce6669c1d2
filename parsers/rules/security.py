"""ACL and attack messages (redis-log-formats.md §2.9).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

RULES: list[tuple[Any, ...]] = [
    # ---------------------------------------------------------------- security (§2.9)
    (
        r"Possible SECURITY ATTACK detected\..*?Connection (?:from (?P<client_ip>.+):(?P<client_port__i>\d+) )?"
        r"aborted\.",
        "security",
        "possible_security_attack",
    ),
    (r"Possible SECURITY ATTACK detected", "security", "possible_security_attack"),
    (
        r"Error loading ACL rule '(?P<rule>.*)' for the user named '(?P<user>.*)': (?P<error>.*)",
        "security",
        "acl_rule_error",
    ),
    (r"Critical error while loading ACLs\. Exiting", "security", "acl_load_failed"),
    (r"Aborting \w+ startup because of ACL errors: (?P<error>.*)", "security", "acl_load_failed"),
    (r"The user '(?P<user>.*)' is disabled \(there is no 'on' modifier", "security", "acl_user_disabled"),
    (r"Spaces not allowed in ACL usernames", "security", "acl_rule_error"),
    (
        r"(?:Opening temp|Writing|Renaming) ACL file for ACL SAVE: (?P<error>.*)",
        "security",
        "acl_save_failed",
        ["Opening", "Writing", "Renaming"],
    ),
    (r"Error in user declaration '(?P<rule>.*)': (?P<error>.*)", "security", "acl_rule_error"),
]
