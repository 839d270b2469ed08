"""Databases behind the task store and the archive index: SQLite (embedded default) or
PostgreSQL (a cluster of nodes, docs/cluster.md). Code outside the stores never sees SQL."""
