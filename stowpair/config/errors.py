"""Configuration errors: every problem, each one line naming file, entry, key."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration is invalid; ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
