"""docs/configuration.md's defaults table against the configuration model and the loader.

The table ("Every option and its default") is the one place a default is stated. Each
row is checked by what it says:

* a TOML value: a file that sets the option to it loads to the same configuration as one
  that leaves it out;
* ``none``: the model's field for the option has no value (None, empty) by default;
* ``required...``: leaving the option out is an error naming it;
* a sentence: the behaviour it describes (:data:`CONTEXTUAL`).

The options of the model are the keys each table's reader allows (``Section.allow``) plus
the Web Application properties; the table must list exactly those. The commented
``key = value`` lines of conf/*.toml must show the documented default, or name it in
their own comment (``(default: X)``).
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest

from stowpair.auth.passwords import hash_password
from stowpair.config import model
from stowpair.config.checks import Checker, Section
from stowpair.config.keycloak import INGEST_KEYS
from stowpair.config.ldif_queues import DEFAULT_CONFIG_QUEUE
from stowpair.config.loader import TOP_KEYS, build_config
from stowpair.config.model import WEBAPP_PROPERTIES, Config

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
HEADING = "## Every option and its default"
#: How the table names one table of each kind of named tables.
PLACEHOLDERS = {
    "webapps": "NAME",
    "queues": "NAME",
    "exporters": "ID",
    "keycloak-clients": "ID",
    "remote_aes": "AET",
}
#: The names of the base document's named tables.
NAMES = {
    "webapps": "W",
    "queues": "Q",
    "exporters": "E",
    "keycloak-clients": "K",
    "remote_aes": "PACS",
}

BASE = """
[device]
[rest]
[rest.auth]
type = "basic"
[rest.auth.users]
alice = "HASH"
[emulator]
[archive]
[logging]
[database]
[dimse]
[ingest]
jwks = "jwks.json"
[remote_aes.PACS]
host = "127.0.0.1"
port = 104
[webapps.W]
url = "http://127.0.0.1:18080/stowrs"
[webapps.W.properties]
[keycloak-clients.K]
token-url = "https://idp.example/token"
client-secret = "s3cret"
[exporters.E]
uri = "stow:W"
queue = "Q"
[queues.Q]
[[rules]]
name = "R"
entity = "Study"
exporters = ["E"]
"""

Doc = dict[str, Any]
Row = tuple[str, str]  # (section, option)


#: A cheap scrypt hash for the base's one user.
USER_HASH = hash_password("correct horse", ln=4)


def base_doc(variant: str = "basic") -> Doc:
    """The base configuration: every section present, required options only. Variants:
    ``bearer`` ([rest.auth] validating JWTs) and ``host`` (the web app by host/port)."""
    doc = tomllib.loads(BASE.replace("HASH", USER_HASH))
    if variant == "bearer":
        doc["rest"]["auth"] = {"type": "bearer", "jwks": "jwks.json"}
    if variant == "host":
        doc["webapps"]["W"] = {"host": "127.0.0.1", "properties": {}}
    return doc


def variant_for(section: str, option: str) -> str:
    if section == "[rest.auth]" and option in INGEST_KEYS:
        return "bearer"
    if section == "[webapps.NAME]" and option in ("host", "port", "tls", "service_path"):
        return "host"
    return "basic"


def table_path(section: str) -> tuple[str | int, ...]:
    """Where a section of the table is in the base document."""
    if section == "top level":
        return ()
    if section == "[[rules]]":
        return ("rules", 0)
    parts: list[str | int] = list(section.strip("[]").split("."))
    if parts[0] in PLACEHOLDERS:
        parts[1] = NAMES[str(parts[0])]
    return tuple(parts)


def load(doc: Doc, folder: Path) -> tuple[Config | None, list[str]]:
    checker = Checker("test.toml")
    config = build_config(copy.deepcopy(doc), checker, folder / "test.toml")
    return (None if checker.errors else config), checker.errors


def _table(doc: Doc, section: str) -> Any:
    table: Any = doc
    for key in table_path(section):
        table = table.setdefault(key, {}) if isinstance(key, str) else table[key]
    return table


def with_option(doc: Doc, section: str, option: str, value: Any) -> Doc:
    doc = copy.deepcopy(doc)
    _table(doc, section)[option] = value
    return doc


def without_option(doc: Doc, section: str, option: str) -> Doc:
    doc = copy.deepcopy(doc)
    _table(doc, section).pop(option, None)
    return doc


def documented() -> dict[Row, str]:
    """The rows of the defaults table: (section, option) -> default cell."""
    text = DOC.read_text(encoding="utf-8")
    assert HEADING in text, f"{DOC} has no section {HEADING!r}"
    body = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows: dict[Row, str] = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("section", "---") or not line.startswith("|"):
            continue
        section, option, default = cells[0].strip("`"), cells[1].strip("`"), cells[2]
        assert (section, option) not in rows, f"{section} {option} is listed twice"
        rows[(section, option)] = default
    assert rows, f"no rows under {HEADING!r} in {DOC}"
    return rows


def literal(cell: str) -> Any:
    """The TOML value of a cell written as one value in backticks, else MISSING."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    if match is None:
        return MISSING
    try:
        return tomllib.loads(f"v = {match.group(1)}")["v"]
    except tomllib.TOMLDecodeError:
        return MISSING


def section_label(path: tuple[str | int, ...]) -> str:
    if not path:
        return "top level"
    if path[0] == "rules":
        return "[[rules]]"
    root = str(path[0])
    if root in PLACEHOLDERS:
        return "[" + ".".join([root, PLACEHOLDERS[root], *map(str, path[2:])]) + "]"
    return "[" + ".".join(map(str, path)) + "]"


def model_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[Row]:
    """Every option the loader accepts: the keys each reader allows, for every variant."""
    allowed: dict[str, set[str]] = {}
    original = Section.allow

    def recording(self: Section, names: Any) -> None:
        names = tuple(names)
        allowed.setdefault(section_label(self.path), set()).update(names)
        original(self, names)

    monkeypatch.setattr(Section, "allow", recording)
    for variant in ("basic", "bearer", "host"):
        _, errors = load(base_doc(variant), tmp_path)
        assert errors == [], errors
    monkeypatch.setattr(Section, "allow", original)
    roots = {label.strip("[]").split(".")[0] for label in allowed}
    options = {("top level", key) for key in TOP_KEYS if key not in roots | {"rules"}}
    for label, names in allowed.items():
        options |= {(label, name) for name in names}
    options -= {("[rest]", "auth"), ("[webapps.NAME]", "properties")}  # sub-tables
    options |= {("[webapps.NAME.properties]", name) for name in WEBAPP_PROPERTIES}
    return options


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    return tmp_path


def test_table_lists_every_option_of_the_model(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the table and the model's options are compared, each has exactly the other's."""
    options = model_options(folder, monkeypatch)
    rows = set(documented())
    missing = sorted(options - rows)
    extra = sorted(rows - options)
    assert not missing, f"options of the model missing from {DOC.name}'s table: {missing}"
    assert not extra, f"rows of {DOC.name}'s table that the model lacks: {extra}"


#: Fields whose name is not the option's with ``-`` as ``_``.
FIELD_NAMES = {"oauth-issuer": "issuer", "required-scope": "required_scopes", "listen": "endpoint"}
#: The model classes that hold each section's options, for ``none`` rows.
MODELS: dict[str, tuple[type, ...]] = {
    "[rest]": (model.Listener,),
    "[emulator]": (model.Listener,),
    "[rest.auth]": (model.RestAuth, model.BearerAuth),
    "[ingest]": (model.BearerAuth,),
    "[archive]": (model.ArchivePaths,),
    "[database]": (model.DatabaseConfig,),
    "[dimse]": (model.DimseConfig,),
    "[remote_aes.AET]": (model.RemoteAE,),
    "[webapps.NAME]": (model.WebApplication,),
    "[webapps.NAME.properties]": (model.WebAppProperties,),
    "[keycloak-clients.ID]": (model.KeycloakClient,),
    "[exporters.ID]": (model.Exporter,),
    "[queues.NAME]": (model.Queue,),
    "[[rules]]": (model.ExportRule,),
}


def field_default(section: str, option: str) -> Any:
    name = FIELD_NAMES.get(option, option.replace("-", "_"))
    for cls in MODELS.get(section, ()):
        assert is_dataclass(cls)
        for f in fields(cls):
            if f.name == name:
                if f.default_factory is not MISSING:
                    return f.default_factory()
                return f.default
    raise AssertionError(f"{section} {option}: no field {name!r} in {MODELS.get(section)}")


def _first_ae_title(pick: Callable[[Config], str]) -> Callable[[Path], None]:
    def check(folder: Path) -> None:
        doc = base_doc()
        doc["device"]["ae_titles"] = ["FIRST", "SECOND"]
        config, errors = load(doc, folder)
        assert config is not None, errors
        assert pick(config) == "FIRST"

    return check


def _dimse_enabled(folder: Path) -> None:
    with_table, errors = load(base_doc(), folder)
    assert with_table is not None, errors
    doc = base_doc()
    del doc["dimse"]
    without, errors = load(doc, folder)
    assert without is not None, errors
    assert (with_table.dimse.enabled, without.dimse.enabled) == (True, False)


def _webapp_port(folder: Path) -> None:
    plain, errors = load(base_doc("host"), folder)
    assert plain is not None, errors
    tls, errors = load(with_option(base_doc("host"), "[webapps.NAME]", "tls", True), folder)
    assert tls is not None, errors
    assert plain.webapps["W"].url == "http://127.0.0.1:80"
    assert tls.webapps["W"].url == "https://127.0.0.1:443"


def _client_id(folder: Path) -> None:
    config, errors = load(base_doc(), folder)
    assert config is not None, errors
    assert config.keycloak_clients["K"].client_id == "K"


#: Rows whose default depends on other settings: (cell as written, its check).
CONTEXTUAL: dict[Row, tuple[str, Callable[[Path], None]]] = {
    ("[dimse]", "enabled"): ("`true` when `[dimse]` exists, else `false`", _dimse_enabled),
    ("[dimse]", "ae_title"): (
        "the first of `[device] ae_titles`",
        _first_ae_title(lambda c: c.dimse.ae_title),
    ),
    ("[exporters.ID]", "ae_title"): (
        "the first of `[device] ae_titles`",
        _first_ae_title(lambda c: c.exporters["E"].ae_title),
    ),
    ("[webapps.NAME]", "port"): ("`80`, or `443` with `tls = true`", _webapp_port),
    ("[keycloak-clients.ID]", "client-id"): ("the table's ID", _client_id),
}


def rows() -> Iterator[Any]:
    for (section, option), cell in documented().items():
        yield pytest.param(section, option, cell, id=f"{section} {option}")


@pytest.mark.parametrize(("section", "option", "cell"), list(rows()))
def test_documented_default_holds(section: str, option: str, cell: str, folder: Path) -> None:
    """When a documented default is checked against the loader and the model, it holds."""
    if (section, option) in CONTEXTUAL:
        text, check = CONTEXTUAL[(section, option)]
        assert cell == text, (
            f"{section} {option}: the test checks {text!r}, the table says {cell!r}"
        )
        check(folder)
        return
    base = base_doc(variant_for(section, option))
    if cell.startswith("required"):
        _, errors = load(without_option(base, section, option), folder)
        assert any(option in e for e in errors), f"{section} {option} left out: {errors}"
        return
    if cell == "none":
        value = field_default(section, option)
        assert value in (None, (), {}, ""), f"{section} {option}: model default {value!r}"
        return
    value = literal(cell)
    assert value is not MISSING, f"{section} {option}: {cell!r} is not a TOML value in backticks"
    omitted, errors = load(base, folder)
    assert omitted is not None, errors
    written, errors = load(with_option(base, section, option, value), folder)
    assert written is not None, f"{section} {option} = {cell}: {errors}"
    assert written == omitted, f"{section} {option} = {cell} is not what leaving it out gives"


_HEADER = re.compile(r"^#?\s*(\[\[?[A-Za-z0-9_.\-\"]+\]\]?)\s*(#.*)?$")
_COMMENTED = re.compile(r"^#\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*(.+)$")


def commented_settings(path: Path) -> Iterator[tuple[int, str, str, Any, str]]:
    """(line, section, option, value, trailing comment) of each ``# key = value`` line,
    the section taken from the last table header, commented out or not."""
    section = "top level"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            name = header.group(1)
            if name == "[[rules]]":
                section = name
            else:
                parts = name.strip("[]").split(".")
                if parts[0] in PLACEHOLDERS and len(parts) > 1:
                    parts[1] = PLACEHOLDERS[parts[0]]
                section = "[" + ".".join(parts) + "]"
            continue
        match = _COMMENTED.match(line)
        if not match:
            continue
        try:
            value = tomllib.loads(f"v = {match.group(2)}")["v"]
        except tomllib.TOMLDecodeError:
            continue
        comment = match.group(2).split("#", 1)[1] if "#" in match.group(2) else ""
        yield number, section, match.group(1), value, comment


def _named_default(comment: str) -> Any:
    found = re.search(r"default: ([^)]+)", comment)
    if found is None:
        return MISSING
    text = found.group(1).strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


@pytest.mark.parametrize("path", sorted((ROOT / "conf").glob("*.toml")), ids=lambda p: p.name)
def test_conf_comments_show_documented_defaults(path: Path) -> None:
    """When a commented-out setting of a shipped file has a documented default, it shows
    that default or names it in its comment."""
    table = documented()
    wrong = []
    for number, section, option, value, comment in commented_settings(path):
        default = literal(table.get((section, option), ""))
        if default is MISSING or value == default:
            continue
        if _named_default(comment) == default:
            continue
        wrong.append(f"{path.name}:{number}: {section} {option} = {value!r}, default {default!r}")
    assert not wrong, "\n".join(wrong)


def test_ldif_import_writes_the_documented_queue_defaults() -> None:
    """When the LDIF import writes a queue the LDIF lacks, its values are the table's."""
    table = documented()
    for option, value in DEFAULT_CONFIG_QUEUE:
        assert literal(table[("[queues.NAME]", option)]) == value, option
