"""The Redis poller: SLOWLOG, COMMANDLOG, LATENCY LATEST, ACL LOG, CONFIG drift, INFO identity.

``source.RedisSource`` is the entry point; each poll kind lives in its own module and turns one
reply into events plus the checkpoint that becomes true once those events are durable.
"""
