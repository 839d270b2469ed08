"""``stowpair config check`` and ``stowpair config import-ldif``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stowpair.config.durations import format_duration
from stowpair.config.effective import (
    auth_text,
    effective_properties,
    ingest_text,
    keycloak_text,
    rest_auth_text,
)
from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config
from stowpair.config.model import (
    DCM4CHEE_WEBAPP_PROPERTIES,
    EXTRA_WEBAPP_PROPERTIES,
    Config,
    Queue,
    WebApplication,
    WebAppProperties,
)
from stowpair.config.secret import Secret, SecretError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser(
        "config",
        help="check and import configurations",
        description="Validate stowpair.toml, or convert dcm4chee LDIF into it.",
    )
    config.set_defaults(handler=lambda _args: _usage(config))
    csub = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = csub.add_parser(
        "check",
        help="validate a configuration file and print a summary",
        description="Validate a configuration; print a summary, or every error (exit 1).",
    )
    check.add_argument("file", nargs="?", default="conf/stowpair.toml", type=Path)
    check.set_defaults(handler=_check)
    ldif = csub.add_parser(
        "import-ldif",
        help="convert dcm4chee LDIF (exporters, web apps, queues, rules) to TOML",
        description="Read dcm4chee LDIF files and print (or write) equivalent stowpair TOML.",
    )
    ldif.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ldif.add_argument("-o", "--output", type=Path, help="write the TOML here (default: stdout)")
    ldif.set_defaults(handler=_import_ldif)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as e:
        for line in e.errors:
            print(line, file=sys.stderr)
        return 1
    lines = summary_lines(config)
    warnings = secret_warnings(config) + auth_warnings(config)
    if warnings:
        count = f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}"
        lines[0] = lines[0].replace(": OK", f": OK, {count} (on stderr)", 1)
    print("\n".join(lines))
    for warning in warnings:
        print(warning, file=sys.stderr)
    return 0


def _import_ldif(args: argparse.Namespace) -> int:
    from stowpair.config.ldif import LdifError
    from stowpair.config.ldif_import import import_ldif

    try:
        text, warnings = import_ldif(args.files)
    except LdifError as e:
        print(str(e), file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as e:
        print(f"{args.output}: cannot write: {e.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}; check it with: stowpair config check {args.output}")
    return 0


def property_lines(props: WebAppProperties) -> list[str]:
    """Every property's effective value: dcm4chee's seven, then our additions, with what
    an unset one means (secrets masked by ``Secret``)."""
    shown = effective_properties(props)
    dcm4chee = [f"{n}={shown[n]}" for n in DCM4CHEE_WEBAPP_PROPERTIES]
    ours = [f"{n}={shown[n]}" for n in EXTRA_WEBAPP_PROPERTIES]
    return [f"properties: {' '.join(dcm4chee)}", f"additions: {' '.join(ours)}"]


def auth_warnings(config: Config) -> list[str]:
    """A valid ``[rest.auth]`` that will surprise: the console's files protected by Bearer
    tokens, which a browser has none of for the page itself."""
    auth = config.rest_auth
    if auth is not None and auth.kind == "bearer" and auth.console == "protected":
        return [
            'warning: rest.auth: type bearer with console = "protected": a browser cannot'
            ' load the console (it has no token for the page itself); set console = "open"'
            " to use it (its API calls still need the token)"
        ]
    return []


def secret_warnings(config: Config) -> list[str]:
    """``env:`` secrets whose variable is unset or empty and ``file:`` secrets that cannot
    be read, one line each: the configuration is valid, but those exports would fail."""
    found: list[tuple[str, str, Secret | None]] = []
    for app in config.webapps.values():
        found += [
            (f"webapp {app.name}", "bearer-token", app.properties.bearer_token),
            (f"webapp {app.name}", "basic-auth", app.properties.basic_auth),
        ]
    for client in config.keycloak_clients.values():
        found += [
            (f"keycloak client {client.name}", "client-secret", client.client_secret),
            (f"keycloak client {client.name}", "user-password", client.user_password),
        ]
    warnings = []
    for where, key, secret in found:
        if secret is None or not secret.raw.startswith(("env:", "file:")):
            continue
        try:
            problem = "" if secret.reveal() else "it is empty"
        except SecretError as e:
            problem = str(e)
        if problem:
            warnings.append(
                f"warning: {where}: {key} = {secret.reference!r}: {problem}; its requests"
                " will fail until it is set"
            )
    return warnings


def _webapp_lines(app: WebApplication | None, name: str, config: Config) -> list[str]:
    if app is None:
        return [f"    -> web app {name}: NOT DEFINED"]
    lines = [f"    -> web app {name}: {app.studies_url} [{', '.join(app.service_classes)}]"]
    if "STOW_RS" not in app.service_classes:
        lines.append("       note: no STOW_RS service class; dcm4chee ends such exports WARNING")
    if not app.installed:
        lines.append("       note: not installed; exports to it fail")
    lines += [f"       {line}" for line in property_lines(app.properties)]
    lines.append(f"       auth: {auth_text(app, config)}")
    return lines


def _dimse_line(config: Config) -> str:
    dimse = config.dimse
    if not dimse.enabled:
        return "DICOM C-STORE SCP disabled"
    host, port = dimse.listener.host, dimse.listener.port
    callers = ", ".join(dimse.accepted_calling_aets) or "any"
    tls = ", TLS" + (" with client certificates" if dimse.tls_ca else "") if dimse.tls_cert else ""
    return f"DICOM C-STORE SCP {dimse.ae_title}@{host}:{port} (calling AEs: {callers}{tls})"


def _remote_line(config: Config, title: str) -> str:
    remote = config.remote_aes.get(title)
    if remote is None:
        return f"    -> remote AE {title}: NOT DEFINED"
    notes = (" TLS" if remote.tls else "") + ("" if remote.installed else " (not installed)")
    return f"    -> remote AE {title}: {remote.host}:{remote.port}{notes}"


def _duration(seconds: float | None) -> str:
    return "none" if seconds is None else format_duration(seconds)


def _queue_line(queue: Queue) -> str:
    return (
        f"  queue {queue.name}: parallel {queue.max_tasks_parallel}, retries "
        f"{queue.max_retries} every {_duration(queue.retry_delay)} x"
        f"{queue.retry_delay_multiplier}% up to {_duration(queue.max_retry_delay)}"
        f"{', retry on warning' if queue.retry_on_warning else ''}"
        f"{', schedules ' + ' | '.join(map(str, queue.schedules)) if queue.schedules else ''}"
        f"{'' if queue.installed else ', NOT INSTALLED (paused)'}"
    )


def _archive_line(config: Config) -> str:
    db = config.database
    if db.url is None:
        return f"archive {config.archive.storage}, index {config.archive.database}"
    return (
        f"archive {config.archive.storage} (shared by the cluster), index and tasks in"
        f" {db.shown_url} (lease {db.lease:g}s, heartbeat every {db.heartbeat_interval:g}s)"
    )


def summary_lines(config: Config) -> list[str]:
    """Human summary of a valid configuration; secrets are masked."""
    emulator = config.emulator
    lines = [
        f"{config.source}: OK (paths relative to {config.base_dir})",
        f"device {config.device.name}, AE titles {', '.join(config.device.ae_titles)}",
        f"REST {config.rest.scheme}://{config.rest.host}:{config.rest.port}"
        + ("" if config.rest.enabled else " (disabled)")
        + f", {rest_auth_text(config)}",
        f"emulator {emulator.listener.scheme}://{emulator.listener.host}:"
        f"{emulator.listener.port}{emulator.path} -> "
        f"{emulator.directory} ({emulator.layout})"
        if emulator.enabled
        else "emulator disabled",
        _archive_line(config),
        _dimse_line(config),
        f"JSON log {config.json_log or 'disabled'}",
        f"exporters ({len(config.exporters)}):",
    ]
    for exporter in config.exporters.values():
        schedules = " | ".join(map(str, exporter.schedules)) or "any time"
        lines.append(
            f"  {exporter.exporter_id}: {exporter.uri}, queue {exporter.queue_name}, "
            f"AE {exporter.ae_title}, schedules {schedules}"
        )
        if exporter.scheme == "dicom":
            lines.append(_remote_line(config, exporter.destination))
        else:
            app = config.webapps.get(exporter.webapp_name)
            lines += _webapp_lines(app, exporter.webapp_name, config)
    unused = sorted(
        set(config.webapps)
        - {e.webapp_name for e in config.exporters.values() if e.scheme != "dicom"}
    )
    if unused:
        lines.append(f"web apps not used by any exporter: {', '.join(unused)}")
    if config.keycloak_clients:
        lines.append(f"keycloak clients ({len(config.keycloak_clients)}):")
        lines += [f"  {c.name}: {keycloak_text(c)}" for c in config.keycloak_clients.values()]
    lines.append(f"ingest: {ingest_text(config.ingest_auth)}")
    lines.append(f"queues ({len(config.queues)}):")
    lines += [_queue_line(q) for q in config.queues.values()]
    lines.append(f"rules ({len(config.rules)}):")
    for rule in config.rules:
        conditions = " and ".join(
            f"{c.attribute}{'!=' if c.negate else '='}{'|'.join(c.values)}" for c in rule.conditions
        )
        lines.append(
            f"  {rule.name}: {rule.entity} -> {', '.join(rule.exporter_ids)}"
            f", delay {_duration(rule.delay)}, when {conditions or 'always'}"
            + (f", received in {' | '.join(map(str, rule.schedules))}" if rule.schedules else "")
        )
    return lines
