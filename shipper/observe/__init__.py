"""The agent observing itself: Prometheus metrics, health endpoints, JSON logs."""
