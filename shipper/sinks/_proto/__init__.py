"""Loki's push protobuf messages (see push.proto), built at import time by push_pb."""
