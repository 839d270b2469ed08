"""The operator's web console: static files served under ``/ui/`` (docs/console.md)."""
