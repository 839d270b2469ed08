"""Plugin discovery and the taps' wiring."""

import os
import subprocess
import sys
from pathlib import Path

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

from stowpair import tap


def test_both_tapnames_discovered() -> None:
    """When twistd scans its plugins, both stowpair and stowrsd are found."""
    names = {p.tapname for p in getPlugins(IServiceMaker)}
    assert {"stowpair", "stowrsd"} <= names


def test_installed_twistd_lists_both_taps(tmp_path: Path) -> None:
    """When this environment's twistd runs outside the repository (as ``make run`` and
    the interop tests run it), the install makes both taps visible: the editable install
    must link twisted/plugins/stowpair_plugin.py (docs/development.md)."""
    twistd = Path(sys.executable).with_name("twistd")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [str(twistd), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    listed = {line.split()[0] for line in run.stdout.splitlines() if line.startswith("    ")}
    assert {"stowpair", "stowrsd"} <= listed, run.stdout + run.stderr


def test_stowrsd_bind_default_is_loopback() -> None:
    """When no --bind is given, stowrsd listens on 127.0.0.1:18080."""
    options = tap.StowrsdOptions()
    options.parseOptions([])
    assert (options["host"], options["port"]) == ("127.0.0.1", 18080)
