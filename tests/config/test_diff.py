"""What a reload changed: added, changed and removed, per kind."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from stowpair.config.diff import changes_text, config_changes
from stowpair.config.loader import load_config
from stowpair.config.model import Config, Exporter, ExportRule, Queue, WebApplication

BASE = Config(
    webapps={"a": WebApplication("a", "http://127.0.0.1:1/stowrs")},
    exporters={"E": Exporter("E", "stow:a", "Q")},
    queues={"Q": Queue("Q")},
    rules=(ExportRule("R", "Study", ("E",)),),
)


def test_nothing_changed() -> None:
    """When the same configuration is loaded again, every list is empty and the text says so."""
    changes = config_changes(BASE, BASE)
    assert all(v == {"added": [], "changed": [], "removed": []} for v in changes.values())
    assert changes_text(changes).startswith("no web app, exporter, queue, rule")


def test_same_file_with_secrets_is_unchanged(tmp_path: Path) -> None:
    """When a file whose web app holds secrets is loaded twice, nothing is reported changed."""
    conf = tmp_path / "c.toml"
    conf.write_text(
        '[webapps.a]\nurl = "http://127.0.0.1:1/stowrs"\n'
        'properties = { bearer-token = "env:TOKEN" }\n'
        '[webapps.b]\nurl = "http://127.0.0.1:2/stowrs"\n'
        'properties = { basic-auth = "user:Secret-1" }\n'
    )
    changes = config_changes(load_config(conf), load_config(conf))
    assert changes["webapps"] == {"added": [], "changed": [], "removed": []}


def test_added_changed_removed() -> None:
    """When web apps, exporters, queues and rules differ, each is named once, by kind."""
    new = replace(
        BASE,
        webapps={"a": WebApplication("a", "http://127.0.0.1:2/stowrs"),
                 "b": WebApplication("b", "http://127.0.0.1:3/stowrs")},
        exporters={},
        queues={"Q": Queue("Q", max_retries=3)},
        rules=(ExportRule("R2", "Series", ("E",)),),
    )  # fmt: skip
    changes = config_changes(BASE, new)
    assert changes["webapps"] == {"added": ["b"], "changed": ["a"], "removed": []}
    assert changes["exporters"] == {"added": [], "changed": [], "removed": ["E"]}
    assert changes["queues"]["changed"] == ["Q"]
    assert changes["rules"] == {"added": ["R2"], "changed": [], "removed": ["R"]}
    assert changes_text(changes) == (
        "web apps added: b; web apps changed: a; exporters removed: E; queues changed: Q;"
        " rules added: R2; rules removed: R"
    )
