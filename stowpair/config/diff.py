"""What a configuration reload changes: web apps, exporters, queues, rules and Keycloak
clients added, changed or removed, for the ``config.reloaded`` log event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stowpair.config.model import Config

#: Log field -> (label in the text, how to read the items of a Config).
_KINDS: dict[str, str] = {
    "webapps": "web apps",
    "exporters": "exporters",
    "queues": "queues",
    "rules": "rules",
    "keycloak_clients": "keycloak clients",
}


def _items(config: Config, kind: str) -> Mapping[str, Any]:
    if kind == "rules":
        return {rule.name: rule for rule in config.rules}
    items: Mapping[str, Any] = getattr(config, kind)
    return items


def config_changes(old: Config, new: Config) -> dict[str, dict[str, list[str]]]:
    """Per kind, the names ``added``, ``changed`` and ``removed`` (sorted; a kind with no
    change has three empty lists)."""
    changes: dict[str, dict[str, list[str]]] = {}
    for kind in _KINDS:
        before, after = _items(old, kind), _items(new, kind)
        changes[kind] = {
            "added": sorted(set(after) - set(before)),
            "changed": sorted(n for n in set(after) & set(before) if after[n] != before[n]),
            "removed": sorted(set(before) - set(after)),
        }
    return changes


def changes_text(changes: Mapping[str, Mapping[str, list[str]]]) -> str:
    """``web apps changed: stowrsd; exporters added: Other`` or ``nothing changed``."""
    parts = []
    for kind, label in _KINDS.items():
        for what in ("added", "changed", "removed"):
            names = changes.get(kind, {}).get(what, [])
            if names:
                parts.append(f"{label} {what}: {', '.join(names)}")
    return "; ".join(parts) or "no web app, exporter, queue, rule or keycloak client changed"
