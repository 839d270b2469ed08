"""Prometheus metrics (``GET /metrics``): counters fed by the documented log events, task
gauges refreshed off the reactor, process metrics. Names and labels: docs/metrics.md."""
