"""The wordings that differ between versions, as regex fragments the rule modules share.

Valkey 8 says PRIMARY where Redis says MASTER (and REPLICA where old Redis says SLAVE); node ids are
40 hex characters, followed from 7.2 by ``(human nodename)``, usually empty.
"""

from __future__ import annotations

MP = r"(?:MASTER|PRIMARY)"  # Valkey 8 says PRIMARY where Redis says MASTER
mp = r"(?:master|primary)"
Mp = r"(?:Master|Primary)"
SR = r"(?:SLAVE|REPLICA)"
sr = r"(?:slave|replica)"
Sr = r"(?:Slave|Replica)"
SERVER = r"(?P<server>Redis|Valkey|Sentinel|KeyDB|redis|valkey)"
NODE = r"(?P<node_id>[0-9a-f]{40})(?: \((?P<node_name>[^)]*)\))?"
SYNC = MP + " <-> " + SR + " sync"
