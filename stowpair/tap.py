"""Options and service wiring for the ``stowpair`` and ``stowrsd`` twistd plugins.

Wiring only: options become configuration objects, configuration becomes a
MultiService. Logic lives in the subsystem packages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.application import strports
from twisted.application.service import IService, MultiService, Service
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import Site

from stowpair.api.health import HealthResource
from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config
from stowpair.config.model import Config
from stowpair.logs import JSONLogService


class StowpairOptions(usage.Options):
    synopsis = "[options]"
    longdesc = "Run the STOW-RS export engine, its REST API and the built-in stowrsd emulator."
    optParameters = [
        ["config", "c", "conf/stowpair.toml", "Configuration file (TOML)."],
        ["json-log", None, None, "JSON-lines log file; '-' disables it (overrides the config)."],
    ]

    def postOptions(self) -> None:
        path = Path(self["config"])
        try:
            self["loaded"] = load_config(path)
        except ConfigError as e:
            raise usage.UsageError(
                "invalid configuration:\n" + "\n".join(f"  {line}" for line in e.errors)
            ) from None


class _Announce(Service):
    """Logs the startup summary once the reactor runs, and the shutdown."""

    log = Logger()

    def __init__(self, tap: str, summary: dict[str, Any]) -> None:
        self.tap = tap
        self.summary = summary

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "{tap} started: {summary}", tap=self.tap, summary=self.summary, event="startup"
        )

    def stopService(self) -> None:
        super().stopService()
        self.log.info("{tap} stopping", tap=self.tap, event="shutdown")


def _json_log_path(option: str | None, config: Config) -> Path | None:
    if option is not None:
        return None if option == "-" else Path(option)
    return config.json_log


def config_summary(config: Config) -> dict[str, Any]:
    return {
        "source": str(config.source),
        "device": config.device.name,
        "rest": f"{config.rest.host}:{config.rest.port}",
        "emulator": (
            f"{config.emulator.listener.host}:{config.emulator.listener.port}{config.emulator.path}"
            if config.emulator.enabled
            else "disabled"
        ),
        "webapps": {name: w.studies_url for name, w in config.webapps.items()},
        "exporters": {i: e.uri for i, e in config.exporters.items()},
        "queues": sorted(config.queues),
        "rules": [r.name for r in config.rules],
    }


def _tcp(host: str, port: int) -> str:
    """A strports description; IPv6 colons are escaped."""
    escaped = host.replace(":", "\\:")
    return f"tcp:{port}:interface={escaped}"


def make_stowpair_service(options: StowpairOptions) -> IService:
    config: Config = options["loaded"]
    top = MultiService()
    json_log = _json_log_path(options["json-log"], config)
    if json_log is not None:
        JSONLogService(json_log).setServiceParent(top)
    _Announce("stowpair", config_summary(config)).setServiceParent(top)
    root = Resource()
    root.putChild(b"health", HealthResource())
    strports.service(_tcp(config.rest.host, config.rest.port), Site(root)).setServiceParent(top)
    return top


class StowrsdOptions(usage.Options):
    synopsis = "[options]"
    longdesc = "A strict STOW-RS origin server, compatible with dcm4che stowrsd's options."
    optParameters = [
        ["bind", "b", "127.0.0.1:18080", "Listen address [ip:]port."],
        ["directory", "d", ".", "Storage directory (created if absent)."],
        ["json-log", None, "var/log/stowrsd.json", "JSON-lines log file; '-' disables it."],
    ]

    def postOptions(self) -> None:
        host, _, port = self["bind"].rpartition(":")
        if not port.isdigit():
            raise usage.UsageError(
                f"--bind {self['bind']!r}: expected [ip:]port, e.g. 127.0.0.1:18080"
            )
        self["host"] = host or "127.0.0.1"
        self["port"] = int(port)


def make_stowrsd_service(options: StowrsdOptions) -> IService:
    top = MultiService()
    if options["json-log"] != "-":
        JSONLogService(Path(options["json-log"])).setServiceParent(top)
    _Announce("stowrsd", {"bind": f"{options['host']}:{options['port']}"}).setServiceParent(top)
    root = Resource()
    root.putChild(b"health", HealthResource())
    strports.service(_tcp(options["host"], options["port"]), Site(root)).setServiceParent(top)
    return top
