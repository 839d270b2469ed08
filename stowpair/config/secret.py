"""Secret values (passwords, tokens) that never print themselves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MASK = "********"


class SecretError(ValueError):
    """A secret reference (``env:`` or ``file:``) could not be resolved."""


@dataclass(frozen=True)
class Secret:
    """A credential as written in the configuration.

    ``raw`` is either the literal value, ``env:NAME`` or ``file:PATH``; ``reveal()``
    resolves it when the value is needed for a request. ``str``/``repr`` always mask,
    so a Secret that reaches a log event or an exception shows ``********``. Two Secrets
    are equal when written the same way, so a reload of an unchanged file changes nothing.
    """

    raw: str
    base_dir: Path | None = None

    def reveal(self) -> str:
        if self.raw.startswith("env:"):
            name = self.raw[4:]
            try:
                return os.environ[name]
            except KeyError:
                raise SecretError(f"environment variable {name} is not set") from None
        if self.raw.startswith("file:"):
            path = Path(self.raw[5:])
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise SecretError(f"cannot read secret file {path}: {e.strerror}") from None
        return self.raw

    @property
    def reference(self) -> str:
        """What may be shown: the reference kind, never the value."""
        if self.raw.startswith(("env:", "file:")):
            return self.raw
        return MASK

    def __str__(self) -> str:
        return self.reference

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"
