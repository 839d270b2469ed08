"""Options of the ``stowpair`` and ``stowrsd`` twistd plugins, and their wiring.

Wiring only: options become configuration objects, and those are handed to the
builders of the service trees (:func:`stowpair.service.stowpair_process`,
:func:`stowpair.receiver.service.stowrsd_process`). Nothing in the product imports this
module; tests/test_plugin.py checks that.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

from twisted.application.service import IService
from twisted.python import usage

from stowpair.config.errors import ConfigError
from stowpair.config.listen import (
    ListenAddress,
    ListenOverrides,
    listen_option,
    server_endpoint,
)
from stowpair.config.loader import load_config
from stowpair.config.model import Config
from stowpair.console import parse_level, use_console_level
from stowpair.fsutil import folder_problem, log_file_problem
from stowpair.receiver.endpoints import (
    bearer_problem,
    bearer_validator,
    client_timeouts,
    listen_endpoint,
    stowrsd_settings,
    tls_problem,
)
from stowpair.receiver.header_workers import parse_count
from stowpair.startup import startup_problems

LISTEN_HELP = (
    "a Twisted endpoint description, e.g. tcp:8080:interface=127.0.0.1 or"
    " ssl:8443:privateKey=key.pem:certKey=cert.pem"
)


class StowpairOptions(usage.Options):
    synopsis = "[options]"
    longdesc = "Run the STOW-RS export engine, its REST API and the built-in stowrsd emulator."
    optParameters = [
        ["config", "c", "conf/stowpair.toml", "Configuration file (TOML)."],
        ["listen", None, None, f"REST API listener, {LISTEN_HELP} (overrides [rest])."],
        ["emulator-listen", None, None, "Emulator listener, the same way (overrides [emulator])."],
        ["json-log", None, None, "JSON-lines log file; '-' disables it (overrides the config)."],
        ["log-level", None, "info", "Console log level: debug, info, warn, error, critical."],
    ]

    def postOptions(self) -> None:
        use_console_level(self, parse_level(self["log-level"]))
        path = Path(self["config"])
        try:
            overrides = ListenOverrides.from_options(self["listen"], self["emulator-listen"])
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        try:
            config = load_config(path)
        except ConfigError as e:
            raise usage.UsageError(
                "invalid configuration:\n" + "\n".join(f"  {line}" for line in e.errors)
            ) from None
        try:
            self["loaded"] = overrides.apply(config)
        except ConfigError as e:  # one line: the option and why
            raise usage.UsageError("; ".join(e.errors)) from None
        self["listen-overrides"] = overrides
        problems = startup_problems(self["loaded"], json_log_path(self["json-log"], self["loaded"]))
        if problems:
            raise usage.UsageError("cannot start:\n" + "\n".join(f"  {p}" for p in problems))


def json_log_path(option: str | None, config: Config) -> Path | None:
    """``--json-log`` (``-``: none) over the configuration's ``[logging] json_file``."""
    if option is not None:
        return None if option == "-" else Path(option)
    return config.json_log


def make_stowpair_service(options: StowpairOptions) -> IService:
    from twisted.internet import reactor

    from stowpair.service import stowpair_process

    config: Config = options["loaded"]
    return stowpair_process(
        config,
        reactor,
        Path(options["config"]),
        json_log_path(options["json-log"], config),
        options["listen-overrides"],
    )


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
        ["bind", "b", None, "Listen address [ip:]port (default 127.0.0.1:18080; 0: any port)."],
        ["listen", None, None, f"Listener instead of -b and --tls-*: {LISTEN_HELP}."],
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
        [
            "header-workers",
            None,
            "auto",
            "Processes reading headers (auto: one per core; 0: none).",
        ],
    ]

    def postOptions(self) -> None:
        use_console_level(self, parse_level(self["log-level"]))
        self["address"] = _listen(self)
        if self["address"] is not None:
            self["host"], self["port"] = self["address"].host, self["address"].port
        else:
            self["host"], self["port"] = _bind(self["bind"] or DEFAULT_BIND)
        if self["ignore"] and self["unpack"]:
            raise usage.UsageError("--ignore and --unpack exclude each other")
        try:
            self["settings"] = stowrsd_settings(self)
            self["timeouts"] = client_timeouts(self)
            self["header-worker-count"] = parse_count(self["header-workers"])
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


DEFAULT_BIND = "127.0.0.1:18080"


def _listen(options: StowrsdOptions) -> ListenAddress | None:
    """``--listen``, checked (the TLS files of ``ssl:`` load); UsageError saying why not."""
    text = options["listen"]
    if text is None:
        return None
    given = [f"--{n}" for n in ("bind", "tls-cert", "tls-key", "tls-ca") if options[n]]
    if given:
        raise usage.UsageError(
            f"--listen and {', '.join(given)} exclude each other: the description names"
            " the address and, with ssl:, the key and certificate (client certificates"
            " need -b with --tls-cert and --tls-ca)"
        )
    try:
        return listen_option("listen", text)
    except ValueError as e:
        raise usage.UsageError(str(e)) from None


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

    from stowpair.receiver.service import stowrsd_process

    address: ListenAddress | None = options["address"]
    if address is not None:
        endpoint = server_endpoint(reactor, address.description)  # checked in postOptions
        bind = address.description
    else:
        endpoint = listen_endpoint(reactor, options["host"], options["port"], options)
        bind = f"{options['host']}:{options['port']}"
    settings = options["settings"]
    validator = bearer_validator(options, reactor)
    auth = None
    if validator is not None:
        auth = "Bearer JWT (" + (options["oauth-issuer"] or options["jwks"]) + ")"
        settings = replace(settings, bearer_validator=validator)
    return stowrsd_process(
        reactor,
        endpoint,
        settings,
        Path(options["directory"]),
        bind=bind,
        layout="discard" if options["ignore"] else "unpack" if options["unpack"] else "uid",
        fsync=not options["no-fsync"],
        timeouts=options["timeouts"],
        json_log=None if options["json-log"] == "-" else Path(options["json-log"]),
        auth=auth,
        header_workers=options["header-worker-count"],
    )
