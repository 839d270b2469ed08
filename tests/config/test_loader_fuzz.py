"""Any TOML-shaped document gives a Config or error lines, never an exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.config.checks import Checker
from stowpair.config.loader import build_config

_names = st.sampled_from(
    ["url", "host", "port", "tls", "uri", "queue", "properties", "chunked", "concurrency",
     "transfer-syntax", "basic-auth", "schedules", "entity", "exporters", "conditions", "delay",
     "retry_delay", "max_retry_delay", "ae_titles", "path", "layout", "json_file", "W", "Q", "E",
     "name", "base_dir", "storage", "x"]
)  # fmt: skip
_scalars = st.one_of(
    st.booleans(),
    st.integers(-5, 70000),
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "",
            "*",
            "stow:W",
            "PT30S",
            "none",
            "true",
            "hour=25",
            "Modality=CT",
            "a:b",
            "a\x00",
            "http://[::1",
            "http://h:99999/x",
            "http://h:x/",
        ]
    ),
    st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=4),
    max_leaves=12,
)
_sections = st.sampled_from(
    ["device", "rest", "emulator", "archive", "logging", "webapps", "exporters", "queues",
     "rules", "demo_on_empty", "base_dir", "other"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_sections, _values, max_size=5))
def test_never_crashes(doc: dict[str, Any]) -> None:
    """When any document shape is validated, problems become error lines, nothing raises."""
    checker = Checker("f.toml", None, Path("/nonexistent"))
    build_config(doc, checker, Path("/nonexistent/f.toml"))
    assert all(line.startswith("f.toml: ") and "\n" not in line for line in checker.errors)
