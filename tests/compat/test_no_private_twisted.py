"""No code of stowpair reaches for a private Twisted name except
stowpair/compat/twisted_private.py: a Twisted upgrade may change those without notice,
and that module's tests say when it did."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ROOT / "stowpair" / "compat" / "twisted_private.py"
SCANNED = [ROOT / "stowpair", ROOT / "twisted" / "plugins"]
_ACCESSORS = {"getattr", "setattr", "hasattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_module(module: str) -> bool:
    return module.split(".")[0] == "twisted" and any(map(_private, module.split(".")))


def own_names(trees: list[ast.Module]) -> set[str]:
    """Private names stowpair itself defines: ``self._x = ...``, class attributes,
    functions and module-level names."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    names.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {n for n in names if _private(n)}


def violations(tree: ast.Module, own: set[str]) -> list[str]:
    """Each private Twisted module, name or attribute the code uses, as ``line: what``."""
    found: list[str] = []
    imported: dict[str, str] = {}  # local name -> the module it comes from
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported[(alias.asname or alias.name).split(".")[0]] = alias.name
                if _private_module(alias.name):
                    found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if _private_module(node.module) or (
                    node.module.split(".")[0] == "twisted" and _private(alias.name)
                ):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if isinstance(base, ast.Name) and base.id in imported:
                if imported[base.id].split(".")[0] == "twisted":
                    found.append(f"{node.lineno}: {base.id}.{node.attr}")
                continue
            if node.attr not in own:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ACCESSORS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and node.args[1].value not in own
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def _sources() -> dict[Path, ast.Module]:
    files = sorted(p for folder in SCANNED for p in folder.rglob("*.py"))
    return {p: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in files}


def test_only_the_compat_module_uses_private_twisted_names() -> None:
    """When code outside stowpair/compat/twisted_private.py imports a private Twisted
    module or name, or reads a private attribute that stowpair does not define (such as
    ``HTTPChannel._command``), this fails and lists each place."""
    sources = _sources()
    assert ALLOWED in sources
    own = own_names(list(sources.values()))
    problems = [
        f"{path.relative_to(ROOT)}:{where}"
        for path, tree in sources.items()
        if path != ALLOWED
        for where in violations(tree, own)
    ]
    assert not problems, (
        "private Twisted names outside stowpair/compat/twisted_private.py (use a public "
        "API, or add the name there with a test in tests/compat):\n" + "\n".join(problems)
    )


@pytest.mark.parametrize(
    "code",
    [
        "from twisted.web._newclient import ResponseFailed",
        "import twisted.internet._sslverify",
        "from twisted.web import _newclient",
        "from twisted.web.http import _IdentityTransferDecoder",
        "def f(channel):\n    return channel._command",
        "def f(request):\n    return getattr(request, '_disconnected', False)",
        "from twisted.web import http\nx = http._parseHeader",
    ],
)
def test_the_scan_finds_private_names(code: str) -> None:
    """The scan itself: each way of reaching a private Twisted name is found."""
    assert violations(ast.parse(code), own=set())


@pytest.mark.parametrize(
    "code",
    [
        "from twisted.web.client import ResponseFailed",
        "class A:\n    def f(self):\n        return self._x",
        "import argparse\ndef f(a: argparse._SubParsersAction) -> None: ...",
        "def f(other):\n    return other._mine",
    ],
)
def test_the_scan_lets_public_and_own_names_pass(code: str) -> None:
    """Public Twisted names, ``self._x`` and private names stowpair defines pass."""
    assert not violations(ast.parse(code), own={"_mine"})
