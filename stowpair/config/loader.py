"""Load and validate ``stowpair.toml`` into :class:`~stowpair.config.model.Config`.

Every problem is collected and reported at once (:class:`ConfigError`), one line each:
``conf/stowpair.toml:42: webapp "DCM4CHEE": unknown property "concurency" (known: ...)``.
Relative paths resolve against ``base_dir``, which itself is relative to the folder of the
configuration file (default: that folder). See docs/configuration.md.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from stowpair.config.checks import Checker, Section, known, show
from stowpair.config.database import read_database
from stowpair.config.dimse import read_dimse, read_remote_ae
from stowpair.config.errors import ConfigError
from stowpair.config.exports import read_exporter, read_queue, read_rule
from stowpair.config.keycloak import read_ingest, read_keycloak_client
from stowpair.config.listen import endpoint_problem, parse_listen, resolve_files
from stowpair.config.locate import Locator
from stowpair.config.model import (
    ArchivePaths,
    ClientTimeouts,
    Config,
    Device,
    EmulatorConfig,
    Listener,
)
from stowpair.config.rest_auth import check_exposure, read_rest_auth
from stowpair.config.webapps import read_webapp

TOP_KEYS = (
    "base_dir",
    "demo_on_empty",
    "device",
    "rest",
    "emulator",
    "archive",
    "database",
    "logging",
    "webapps",
    "exporters",
    "queues",
    "rules",
    "keycloak-clients",
    "ingest",
    "dimse",
    "remote_aes",
)
LAYOUTS = ("uid", "unpack", "discard")


def _section(checker: Checker, doc: dict[str, Any], key: str) -> Section:
    return checker.section(doc.get(key, {}), (key,), key)


def _device(checker: Checker, doc: dict[str, Any]) -> tuple[Device, float]:
    section = _section(checker, doc, "device")
    section.allow(("name", "ae_titles", "task_polling_interval"))
    default = Device()
    titles = section.strings("ae_titles", default.ae_titles)
    for title in titles:
        if len(title) > 16 or "\\" in title:
            section.error("ae_titles", f'AE title "{title}" must be 1-16 characters, no "\\"')
    if not titles:
        section.error("ae_titles", "ae_titles needs at least one AE title")
        titles = default.ae_titles
    interval = section.duration("task_polling_interval", 5.0) or 0.0
    if interval <= 0:
        section.error("task_polling_interval", "task_polling_interval must be more than PT0S")
        interval = 5.0
    return Device(name=section.string("name", default.name), ae_titles=titles), interval


LISTENER_KEYS = (
    "listen",
    "host",
    "port",
    "enabled",
    "header_timeout",
    "body_timeout",
    "body_min_rate",
    "idle_timeout",
)


def _listener(section: Section, default: Listener) -> Listener:
    listener = Listener(
        host=section.string("host", default.host),
        port=section.integer("port", default.port, 0, 65535),
        enabled=section.boolean("enabled", default.enabled),
        timeouts=_client_timeouts(section, default.timeouts),
    )
    if not section.has("listen"):
        return listener
    given = [key for key in ("host", "port") if section.has(key)]
    if given:
        section.error(
            "listen",
            f"listen and {' and '.join(given)} are both set; keep one: listen names the"
            ' interface and port itself (e.g. listen = "tcp:8080:interface=127.0.0.1")',
        )
    text = section.string("listen", "")
    if not text:
        return listener  # reported by string()
    try:
        address = resolve_files(parse_listen(text), section.checker.base_dir)
    except ValueError as e:
        section.error("listen", f"listen {show(text)}: {e}")
        return listener
    problem = endpoint_problem(address)
    if problem:
        section.error("listen", f"listen {show(text)}: {problem}")
    return replace(listener, host=address.host, port=address.port, endpoint=address.description)


def _client_timeouts(section: Section, default: ClientTimeouts) -> ClientTimeouts:
    """``header_timeout``, ``body_timeout``, ``idle_timeout`` (durations above zero) and
    ``body_min_rate`` (bytes per second, 0 = only a silent window closes)."""

    def positive(key: str, fallback: float) -> float:
        value = section.duration(key, fallback)
        if value is None or value <= 0:
            section.error(key, f"{key} must be more than PT0S, e.g. PT60S")
            return fallback
        return value

    return ClientTimeouts(
        header=positive("header_timeout", default.header),
        body=positive("body_timeout", default.body),
        body_min_rate=section.integer("body_min_rate", int(default.body_min_rate), 0),
        idle=positive("idle_timeout", default.idle),
    )


def _emulator(checker: Checker, doc: dict[str, Any]) -> EmulatorConfig:
    section = _section(checker, doc, "emulator")
    section.allow((*LISTENER_KEYS, "path", "directory", "layout", "fsync"))
    default = EmulatorConfig()
    path = section.string("path", default.path)
    if not path.startswith("/"):
        section.error("path", f"path must start with /, e.g. /stowrs, not {show(path)}")
    layout = section.string("layout", default.layout)
    if layout not in LAYOUTS:
        section.error("layout", f"layout {show(layout)} is not one of {known(LAYOUTS)}")
        layout = default.layout
    listener = _listener(section, default.listener)
    return EmulatorConfig(
        enabled=listener.enabled,
        listener=listener,
        path=path,
        directory=section.path_value("directory", default.directory),
        layout=layout,  # type: ignore[arg-type]  # checked against LAYOUTS above
        fsync=section.boolean("fsync", default.fsync),
    )


def _paths(checker: Checker, doc: dict[str, Any]) -> tuple[ArchivePaths, Path | None]:
    archive = _section(checker, doc, "archive")
    archive.allow(("storage", "database", "max_request_bytes"))
    default = ArchivePaths()
    limit = archive.integer("max_request_bytes", 0, 1) if "max_request_bytes" in archive.data else 0
    paths = ArchivePaths(
        storage=archive.path_value("storage", default.storage),
        database=archive.path_value("database", default.database),
        max_request_bytes=limit or None,
    )
    logging = _section(checker, doc, "logging")
    logging.allow(("json_file",))
    json_file = logging.string("json_file", "")
    if json_file == "-":
        return paths, None
    return paths, logging.path_value("json_file", Path("var/log/stowpair.json"))


def _named_tables(checker: Checker, doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        checker.error(key, f"[{key}.NAME] tables expected, not {show(value)}", (), None)
        return {}
    return value


def _cross_check(checker: Checker, config: Config) -> None:
    """References between entries: exporter → web app, queue, AE; rule → exporters;
    web app → keycloak client."""
    for app in config.webapps.values():
        if app.keycloak_client and app.keycloak_client not in config.keycloak_clients:
            checker.error(
                f'webapp "{app.name}"',
                f'keycloak-client "{app.keycloak_client}" is not defined (defined: '
                f"{known(config.keycloak_clients)}); add [keycloak-clients.{app.keycloak_client}]",
                ("webapps", app.name),
                "keycloak-client",
            )
    for exporter in config.exporters.values():
        entry, path = f'exporter "{exporter.exporter_id}"', ("exporters", exporter.exporter_id)
        name = exporter.webapp_name
        if name and exporter.scheme in ("stow", "stowrs") and name not in config.webapps:
            checker.error(
                entry,
                f'uri "{exporter.uri}" names web app "{name}", which is not '
                f"defined (defined: {known(config.webapps)})",
                path,
                "uri",
            )
        if name and exporter.scheme == "dicom" and name not in config.remote_aes:
            checker.error(
                entry,
                f'uri "{exporter.uri}" names remote AE "{name}", which is not defined in '
                f"[remote_aes.{name}] (defined: {known(config.remote_aes)})",
                path,
                "uri",
            )
        if exporter.queue_name and exporter.queue_name not in config.queues:
            checker.error(
                entry,
                f'queue "{exporter.queue_name}" is not defined (defined: {known(config.queues)})',
                path,
                "queue",
            )
        if exporter.ae_title not in config.device.ae_titles:
            checker.error(
                entry,
                f'ae_title "{exporter.ae_title}" is not one of the device\'s '
                f"ae_titles ({known(config.device.ae_titles)})",
                path,
                "ae_title",
            )
    dimse = config.dimse
    if dimse.enabled and dimse.ae_title not in config.device.ae_titles:
        checker.error(
            "dimse",
            f'ae_title "{dimse.ae_title}" is not one of the device\'s ae_titles '
            f"({known(config.device.ae_titles)})",
            ("dimse",),
            "ae_title",
        )
    seen: set[str] = set()
    for index, rule in enumerate(config.rules):
        entry, rule_path = f'rule "{rule.name}"', ("rules", index)
        if rule.name in seen:
            checker.error(
                entry, "another rule has the same name; names must be unique", rule_path, "name"
            )
        seen.add(rule.name)
        for exporter_id in rule.exporter_ids:
            if exporter_id not in config.exporters:
                checker.error(
                    entry,
                    f'exporter "{exporter_id}" is not defined (defined: {known(config.exporters)})',
                    rule_path,
                    "exporters",
                )


def _base_dir(checker: Checker, doc: dict[str, Any], folder: Path) -> Path:
    value = doc.get("base_dir", ".")
    if not isinstance(value, str) or not value or "\x00" in value:
        checker.error(
            "top level", f"base_dir must be a folder path, not {show(value)}", (), "base_dir"
        )
        value = "."
    return (folder / value).resolve()


def build_config(doc: dict[str, Any], checker: Checker, source: Path) -> Config:
    """Validate a parsed TOML document; errors accumulate in ``checker``."""
    for key in doc:
        if key not in TOP_KEYS:
            checker.error("top level", f'unknown key "{key}" (known: {known(TOP_KEYS)})', (), key)
    checker.base_dir = _base_dir(checker, doc, source.parent)
    demo = doc.get("demo_on_empty", False)
    if not isinstance(demo, bool):
        checker.error(
            "top level",
            f"demo_on_empty must be true or false, not {show(demo)}",
            (),
            "demo_on_empty",
        )
        demo = False
    device, interval = _device(checker, doc)
    rest = _section(checker, doc, "rest")
    rest.allow((*LISTENER_KEYS, "insecure", "auth"))
    archive, json_log = _paths(checker, doc)
    rules = doc.get("rules", [])
    if not isinstance(rules, list):
        checker.error("rules", "rules must be written [[rules]] (a list of tables)")
        rules = []
    config = Config(
        source=source,
        base_dir=checker.base_dir,
        device=device,
        rest=_listener(rest, Listener()),
        emulator=_emulator(checker, doc),
        archive=archive,
        database=read_database(checker, doc),
        json_log=json_log,
        task_polling_interval=interval,
        demo_on_empty=demo,
        webapps={
            n: read_webapp(checker, n, d) for n, d in _named_tables(checker, doc, "webapps").items()
        },
        exporters={
            i: read_exporter(checker, i, d, device.ae_titles[0])
            for i, d in _named_tables(checker, doc, "exporters").items()
        },
        queues={
            n: read_queue(checker, n, d) for n, d in _named_tables(checker, doc, "queues").items()
        },
        rules=tuple(read_rule(checker, i, d) for i, d in enumerate(rules)),
        keycloak_clients={
            n: read_keycloak_client(checker, n, d)
            for n, d in _named_tables(checker, doc, "keycloak-clients").items()
        },
        ingest_auth=read_ingest(checker, doc["ingest"]) if "ingest" in doc else None,
        rest_auth=read_rest_auth(rest),
        rest_insecure=rest.boolean("insecure", False),
        dimse=read_dimse(checker, doc, device.ae_titles[0]),
        remote_aes={
            t.strip(): read_remote_ae(checker, t, d)
            for t, d in _named_tables(checker, doc, "remote_aes").items()
        },
    )
    _cross_check(checker, config)
    check_exposure(checker, config, doc)
    return config


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raises ConfigError listing every problem."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read the configuration: {e.strerror}"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8"]) from None
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors write
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise ConfigError([f"{path}: not valid TOML: arrays or tables nested too deeply"]) from None
    except tomllib.TOMLDecodeError as e:
        # Python 3.11's error has no line attribute; its message ends "(at line N, column M)".
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", str(e))
        where = f"{path}:{match.group(1)}" if match else str(path)
        what = str(e)[: match.start()] if match else str(e)
        column = f" (column {match.group(2)})" if match else ""
        raise ConfigError([f"{where}: not valid TOML: {what}{column}"]) from None
    checker = Checker(str(path), Locator(text))
    config = build_config(doc, checker, path)
    if checker.errors:
        raise ConfigError(checker.errors)
    return config
