"""Plugin discovery and the taps' wiring."""

import ast
import os
import subprocess
import sys
from pathlib import Path

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

import stowpair
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


# -- the tap is wiring only ------------------------------------------------------------

PACKAGE = Path(stowpair.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as a and a.b)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_product_module_imports_the_tap() -> None:
    """When the product's import graph is scanned, no module but the twistd plugin (and
    the tap itself) imports stowpair.tap: services never depend on the command line."""
    importers = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path.name != "tap.py" and "stowpair.tap" in _imports(path)
    )
    assert importers == []


def test_tap_holds_options_and_wiring_only() -> None:
    """When the tap module is read, it defines option classes and functions only, no
    service: every service and its assembly live in the modules the tap calls."""
    tree = ast.parse((PACKAGE / "tap.py").read_text(encoding="utf-8"))
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert classes and all(
        [ast.unparse(base) for base in c.bases] == ["usage.Options"] for c in classes
    )
    services = {"Service", "MultiService", "ProcessService", "StowpairService", "ReceiverService"}
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    named |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert named & services == set()
