"""The console log of the twistd taps: readable lines at ``--log-level`` and above.

twistd writes every event to stdout (or ``--logfile``), DEBUG included. Both taps have
``--log-level`` (default ``info``); their options point twistd's ``--logger`` at
:func:`console_observer`, the documented way to choose a twistd log observer, unless the
operator chose ``--logger`` or ``--syslog`` already. At INFO the console shows one line
per HTTP request received and per task transition; the per-instance lines, the access
log and Twisted's factory and port notices ("Starting factory", "… starting on 8080")
are DEBUG. The JSON log
(``[logging] json_file``) keeps every event at every level.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogEvent,
    Logger,
    LogLevel,
    PredicateResult,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.python.logfile import LogFile
from zope.interface import implementer

from stowpair.logs import register_events

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}
#: Twisted's notices when a listening or client factory starts and stops: one pair per
#: pooled HTTP connection, noise at INFO.
_FACTORY_NOTICES = ("Starting factory {factory!r}", "Stopping factory {factory!r}")
#: Twisted's legacy notices of a TCP port opening and closing; our ``listening`` events
#: say where each listener is.
_PORT_NOTICES = re.compile(r"\S+ starting on \d+|\(\w+ Port \d+ Closed\)")
#: The ``--logger`` value twistd resolves with ``namedAny``.
OBSERVER_NAME = f"{__name__}.console_observer"


@dataclass
class _Settings:
    level: LogLevel = LogLevel.info
    #: twistd's ``--logfile``: None or "-" means stdout.
    logfile: str | None = None


_settings = _Settings()


def parse_level(text: str, option: str = "--log-level") -> LogLevel:
    """``debug``, ``info``, ``warn``, ``error`` or ``critical`` (any case)."""
    level = LEVELS.get(text.strip().lower())
    if level is None:
        raise usage.UsageError(
            f"{option} {text!r}: expected one of debug, info, warn, error, critical"
        )
    return level


def effective_level(event: LogEvent) -> LogLevel:
    """The level the console judges an event by (factory and port notices count as
    DEBUG)."""
    if event.get("log_format") in _FACTORY_NOTICES:
        return LogLevel.debug
    text = event.get("log_text")
    if isinstance(text, str) and _PORT_NOTICES.fullmatch(text):
        return LogLevel.debug
    level = event.get("log_level")
    return level if isinstance(level, type(LogLevel.info)) else LogLevel.info


@implementer(ILogFilterPredicate)
class _AtLeast:
    """Events at ``level`` or above pass."""

    def __init__(self, level: LogLevel) -> None:
        self.level = level

    def __call__(self, event: LogEvent) -> PredicateResult:
        passes = _rank(effective_level(event)) >= _rank(self.level)
        return PredicateResult.maybe if passes else PredicateResult.no


def _rank(level: LogLevel) -> int:
    return list(LogLevel.iterconstants()).index(level)


def filtered(observer: ILogObserver, level: LogLevel) -> ILogObserver:
    """``observer`` seeing only events at ``level`` or above."""
    result: ILogObserver = FilteringLogObserver(observer, [_AtLeast(level)])
    return result


def console_observer() -> ILogObserver:
    """twistd's text observer (stdout or ``--logfile``) at the configured level."""
    name = _settings.logfile
    out: Any = sys.stdout if name in (None, "", "-") else LogFile.fromFullPath(name)
    text: FileLogObserver = textFileLogObserver(out)
    return filtered(text, _settings.level)


def use_console_level(options: usage.Options, level: LogLevel) -> None:
    """Make twistd log through :func:`console_observer` at ``level``; a tap calls this
    from ``postOptions`` (twistd's own options are parsed by then, its logger not yet
    started). Left alone when the operator chose ``--logger`` or ``--syslog``, or
    outside twistd."""
    parent = getattr(options, "parent", None)
    if parent is None or parent.get("logger") is not None or parent.get("syslog"):
        return
    _settings.level = level
    _settings.logfile = parent.get("logfile")
    parent["logger"] = OBSERVER_NAME


class AccessLogAtDebug:
    """A mixin for ``twisted.web.server.Site``: each request's access-log line becomes
    the DEBUG event ``http.access`` (the receiver and the REST API log their own INFO line
    per request), and the Site's "Starting factory" notices are off."""

    noisy = False

    def log(self, request: Any) -> None:
        address = request.getClientAddress()
        agent = request.getHeader(b"user-agent") or b"-"
        _access.debug(
            "{peer} {method} {uri} {status} {bytes} {agent}",
            peer=getattr(address, "host", "-"),
            method=(request.method or b"").decode("latin-1"),
            uri=(request.uri or b"").decode("utf-8", "replace")[:500],
            status=request.code,
            bytes=request.sentLength,
            agent=agent.decode("latin-1")[:200],
            event="http.access",
        )


_access = Logger(namespace="stowpair.access")
register_events({"http.access": ("peer", "method", "uri", "status", "bytes", "agent")})
