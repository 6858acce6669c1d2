"""The audit trail you can prove: read back what the sinks hold and check the hash chain.

* :mod:`shipper.audit.verify` -- the checker: raw event lines in, a per-stream report out
  (gaps, duplicates, chain breaks, agent-declared gaps; explained or not). No I/O. Its parts:
  :mod:`~shipper.audit.sealed_lines` (what a line holds), :mod:`~shipper.audit.report` (the
  findings), :mod:`~shipper.audit.declared_events` (what the agent's own events explain),
  :mod:`~shipper.audit.chain_check` (links and their diagnosis).
* :mod:`shipper.audit.readers` -- reading the trail back from the local sink, Loki or
  Elasticsearch, plus the agent's own view (spool chain heads, pending rows, dead letters).
* :mod:`shipper.audit.anchor` -- ``chain_anchor`` events and heads snapshots, so the chain
  heads can be kept somewhere an attacker on the host cannot rewrite.

The sealing itself (``stream``/``seq``/``prev_hash``) happens in :mod:`shipper.pipeline.spool`;
docs/audit.md says what is guaranteed and what is not.
"""
