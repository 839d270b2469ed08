"""Options and service wiring for the ``stowpair`` and ``stowrsd`` twistd plugins.

Wiring only: options become configuration objects, configuration becomes a
MultiService. Logic lives in the subsystem packages.
"""

from __future__ import annotations

import ipaddress
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.application.service import IService, Service
from twisted.python import usage

from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config
from stowpair.config.model import Config
from stowpair.config.secret import SecretError
from stowpair.console import parse_level, use_console_level
from stowpair.fsutil import folder_problem, log_file_problem
from stowpair.logs import escape_console
from stowpair.metrics.registry import Metrics, MetricsService
from stowpair.process import ProcessService
from stowpair.receiver.endpoints import (
    bearer_problem,
    bearer_validator,
    client_timeouts,
    jwks_problem,
    listen_endpoint,
    stowrsd_settings,
    tls_problem,
)
from stowpair.receiver.service import ReceiverService


class StowpairOptions(usage.Options):
    synopsis = "[options]"
    longdesc = "Run the STOW-RS export engine, its REST API and the built-in stowrsd emulator."
    optParameters = [
        ["config", "c", "conf/stowpair.toml", "Configuration file (TOML)."],
        ["json-log", None, None, "JSON-lines log file; '-' disables it (overrides the config)."],
        ["log-level", None, "info", "Console log level: debug, info, warn, error, critical."],
    ]

    def postOptions(self) -> None:
        use_console_level(self, parse_level(self["log-level"]))
        path = Path(self["config"])
        try:
            self["loaded"] = load_config(path)
        except ConfigError as e:
            raise usage.UsageError(
                "invalid configuration:\n" + "\n".join(f"  {line}" for line in e.errors)
            ) from None
        problems = _folder_problems(self["loaded"], self["json-log"])
        problems += [p for p in [_database_problem(self["loaded"])] if p]
        ingest = self["loaded"].ingest_auth
        problems += [p for p in [jwks_problem(ingest.jwks if ingest else None)] if p]
        if problems:
            raise usage.UsageError("cannot start:\n" + "\n".join(f"  {p}" for p in problems))


def _folder_problems(config: Config, json_log_option: str | None) -> list[str]:
    """Folders and files the service writes, checked before it starts (one line each)."""
    checks = [
        folder_problem(config.archive.storage, "archive.storage"),
        folder_problem(config.archive.database.parent, "the folder of archive.database"),
    ]
    if config.emulator.enabled:
        checks.append(folder_problem(config.emulator.directory, "emulator.directory"))
    log = _json_log_path(json_log_option, config)
    if log is not None:
        checks.append(log_file_problem(log, "the JSON log"))
    return [p for p in checks if p is not None]


def _database_problem(config: Config) -> str | None:
    password = config.database.password
    if password is None:
        return None
    try:
        password.reveal()
    except SecretError as e:
        return f"[database] password: {e}"
    return None


def _json_log_path(option: str | None, config: Config) -> Path | None:
    if option is not None:
        return None if option == "-" else Path(option)
    return config.json_log


def config_summary(config: Config) -> dict[str, Any]:
    return {
        "source": str(config.source),
        "device": config.device.name,
        "database": config.database.shown_url or str(config.archive.database),
        "rest": f"{config.rest.host}:{config.rest.port}",
        "emulator": (
            f"{config.emulator.listener.host}:{config.emulator.listener.port}{config.emulator.path}"
            if config.emulator.enabled
            else "disabled"
        ),
        "dimse": (
            f"{config.dimse.ae_title}@{config.dimse.listener.host}:{config.dimse.listener.port}"
            if config.dimse.enabled
            else "disabled"
        ),
        "webapps": {name: w.studies_url for name, w in config.webapps.items()},
        "remote_aes": {t: f"{a.host}:{a.port}" for t, a in config.remote_aes.items()},
        "exporters": {i: e.uri for i, e in config.exporters.items()},
        "queues": sorted(config.queues),
        "rules": [r.name for r in config.rules],
    }


def _tcp(host: str, port: int) -> str:
    """A strports description; IPv6 colons are escaped."""
    escaped = host.replace(":", "\\:")
    return f"tcp:{port}:interface={escaped}"


def make_stowpair_service(options: StowpairOptions) -> IService:
    from twisted.internet import reactor

    from stowpair.service import StowpairService

    config: Config = options["loaded"]
    escape_console()
    json_log = _json_log_path(options["json-log"], config)
    top = ProcessService("stowpair", config_summary(config), json_log)
    app = StowpairService(config, reactor, Path(options["config"]))
    app.setServiceParent(top)
    _ReloadOnHangup(app, reactor).setServiceParent(top)
    return top


class _ReloadOnHangup(Service):
    """SIGHUP reloads the configuration, as ``POST /dcm4chee-arc/ctrl/reload`` does."""

    def __init__(self, app: Any, reactor: Any) -> None:
        self.app = app
        self.reactor = reactor
        self._previous: Any = None

    def startService(self) -> None:
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._hangup)

    def _hangup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self.app.reload)

    def stopService(self) -> None:
        super().stopService()
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)


class StowrsdOptions(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "A strict STOW-RS origin server, compatible with dcm4che stowrsd's options"
        " (-b, -d, --ignore, -u). See docs/stowrsd.md."
    )
    optFlags = [
        ["ignore", None, "Validate and answer, store nothing (dcm4che --ignore)."],
        ["unpack", "u", "dcm4che layout: <dir>/<YYYYMMDDhhmmss.SSS>/<NNN>.dcm per request."],
        ["no-fsync", None, "Do not fsync stored files (faster, not crash-safe)."],
    ]
    optParameters = [
        ["bind", "b", "127.0.0.1:18080", "Listen address [ip:]port (port 0: any free port)."],
        ["directory", "d", ".", "Storage directory (created if absent)."],
        ["path", None, "/stowrs", "Service path: POST {path}/studies[/{StudyUID}]."],
        ["tls-cert", None, None, "PEM server certificate (chain); enables HTTPS."],
        ["tls-key", None, None, "PEM private key for --tls-cert (default: in the cert file)."],
        ["tls-ca", None, None, "PEM CA certificates: require client certificates signed by them."],
        ["bearer-token", None, None, "Require 'Authorization: Bearer T' (env:NAME, file:PATH)."],
        ["basic-auth", None, None, "Require HTTP Basic USER:PASS (env:NAME, file:PATH)."],
        ["oauth-issuer", None, None, "Require JWT access tokens from this issuer (checks iss)."],
        ["jwks", None, None, "JWKS file or URL of the token signing keys (default: discovery)."],
        ["audience", None, None, "Required aud claim of access tokens."],
        ["required-scope", None, None, "Scopes every access token must grant ('a b')."],
        ["leeway", None, "0", "Seconds of clock skew allowed when checking exp and nbf."],
        ["accept-transfer-syntax", None, "*", "Accepted transfer syntaxes (UIDs/keywords)."],
        ["max-request-size", None, None, "Largest request body, e.g. 2G (413 beyond)."],
        ["max-part-size", None, None, "Largest part, e.g. 600M (0xA700 beyond)."],
        ["fail-rate", None, "0", "Probability that a valid instance fails (fault injection)."],
        ["fail-reason", None, "0110", "Failure Reason for --fail-rate, hex (e.g. A700, C122)."],
        ["status", None, None, "Answer whole requests with this HTTP status (fault injection)."],
        ["status-rate", None, "1", "Probability of --status per request."],
        ["retry-after", None, "5", "Retry-After seconds sent with an injected 503."],
        ["delay", None, "0", "Seconds to wait before answering."],
        ["seed", None, None, "Random seed making injected faults repeatable."],
        ["header-timeout", None, "60", "Seconds for a request line and headers to arrive."],
        ["body-timeout", None, "60", "Window (seconds) over which --body-min-rate is checked."],
        ["body-min-rate", None, "500", "Least body bytes per second, per window (0: any)."],
        ["idle-timeout", None, "60", "Seconds of silence after which a connection closes."],
        ["json-log", None, "var/log/stowrsd.json", "JSON-lines log file; '-' disables it."],
        ["log-level", None, "info", "Console log level: debug, info, warn, error, critical."],
    ]

    def postOptions(self) -> None:
        use_console_level(self, parse_level(self["log-level"]))
        self["host"], self["port"] = _bind(self["bind"])
        if self["ignore"] and self["unpack"]:
            raise usage.UsageError("--ignore and --unpack exclude each other")
        try:
            self["settings"] = stowrsd_settings(self)
            self["timeouts"] = client_timeouts(self)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        log = None if self["json-log"] == "-" else Path(self["json-log"])
        problems = [
            bearer_problem(self),
            tls_problem(self),
            folder_problem(Path(self["directory"]), "--directory"),
            log_file_problem(log, "--json-log") if log is not None else None,
        ]
        found = [p for p in problems if p is not None]
        if found:
            raise usage.UsageError("; ".join(found))


def _bind(text: str) -> tuple[str, int]:
    """``[ip:]port`` -> (ip, port); UsageError naming what is wrong."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    example = "expected [ip:]port, e.g. 127.0.0.1:18080 or [::1]:18080"
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise usage.UsageError(f"--bind {text!r}: {example} (port 0-65535)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise usage.UsageError(
            f"--bind {text!r}: {host!r} is not an IP address; {example}"
        ) from None
    return host, int(port)


def make_stowrsd_service(options: StowrsdOptions) -> IService:
    from twisted.internet import reactor

    escape_console()
    json_log = None if options["json-log"] == "-" else Path(options["json-log"])
    layout = "discard" if options["ignore"] else "unpack" if options["unpack"] else "uid"
    summary = {
        "bind": f"{options['host']}:{options['port']}",
        "layout": layout,
        "directory": options["directory"],
        "path": options["settings"].path,
    }
    top = ProcessService("stowrsd", summary, json_log)
    endpoint = listen_endpoint(reactor, options["host"], options["port"], options)
    settings = options["settings"]
    validator = bearer_validator(options, reactor)
    if validator is not None:
        summary["auth"] = "Bearer JWT (" + (options["oauth-issuer"] or options["jwks"]) + ")"
        settings = replace(settings, bearer_validator=validator)
    metrics = Metrics(receiver_only=True)
    MetricsService(metrics).setServiceParent(top)
    receiver = ReceiverService(
        reactor,
        endpoint,
        settings,
        Path(options["directory"]),
        layout,
        fsync=not options["no-fsync"],
        timeouts=options["timeouts"],
        metrics=metrics,
    )
    receiver.setServiceParent(top)
    # a listener that fails later than at once (none of TCP or TLS) still stops stowrsd
    receiver.listening.addErrback(lambda _: reactor.callWhenRunning(reactor.stop))
    return top
