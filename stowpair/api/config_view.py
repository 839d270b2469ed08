"""``GET /ctrl/config``: the running configuration as JSON, secrets masked (our addition).

The values are the effective ones ``stowpair config check`` prints
(:mod:`stowpair.config.effective`): defaults filled in, what an unset property means,
secrets shown as ``********`` or their ``env:``/``file:`` reference, never their value.
``lastReload`` tells when the configuration was last reloaded (SIGHUP or
``POST /ctrl/reload``) and whether the new file was applied or refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair.api.respond import Answer, json_answer, render_async
from stowpair.api.taskjson import format_time
from stowpair.config.durations import format_duration
from stowpair.config.effective import (
    auth_text,
    effective_properties,
    ingest_text,
    keycloak_text,
    rest_auth_text,
)
from stowpair.config.model import Config, Exporter, ExportRule, Queue, WebApplication

if TYPE_CHECKING:
    from stowpair.api.dcm4chee import Dcm4cheeApi


@dataclass(frozen=True)
class ReloadRecord:
    """The outcome of the last configuration reload."""

    time: float
    #: The file's errors when it was refused (the running configuration stayed).
    errors: tuple[str, ...] = ()
    #: What changed when it was applied (``config.reloaded``'s summary).
    summary: str = ""

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "time": format_time(self.time),
            "result": "REFUSED" if self.errors else "APPLIED",
        }
        if self.errors:
            body["errors"] = list(self.errors)
        else:
            body["summary"] = self.summary
        return body


class ConfigResource(Resource):
    """``GET /ctrl/config``."""

    isLeaf = True

    def __init__(self, api: Dcm4cheeApi) -> None:
        super().__init__()
        self.api = api

    def render_GET(self, request: Request) -> int:
        return render_async(request, self._answer)

    async def _answer(self, request: Request) -> Answer:
        api = self.api
        body = config_json(api.config)
        body["loadedTime"] = format_time(api.loaded_time)
        body["lastReload"] = api.last_reload.as_json() if api.last_reload else None
        return json_answer(200, body)


def _duration(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def config_json(config: Config) -> dict[str, Any]:
    """The configuration's effective values (see the module docstring)."""
    emulator = config.emulator
    dimse = config.dimse
    return {
        "source": str(config.source) if config.source else None,
        "device": {
            "name": config.device.name,
            "aeTitles": list(config.device.ae_titles),
            "taskPollingInterval": format_duration(config.task_polling_interval),
        },
        "rest": f"{config.rest.host}:{config.rest.port}, {rest_auth_text(config)}",
        "emulator": (
            f"{emulator.listener.scheme}://{emulator.listener.host}:{emulator.listener.port}"
            f"{emulator.path}"
            f" -> {emulator.directory} ({emulator.layout})"
            if emulator.enabled
            else None
        ),
        "dimse": (
            f"{dimse.ae_title}@{dimse.listener.host}:{dimse.listener.port}"
            if dimse.enabled
            else None
        ),
        "ingest": ingest_text(config.ingest_auth),
        "webapps": [_webapp(app, config) for app in config.webapps.values()],
        "exporters": [_exporter(e) for e in config.exporters.values()],
        "queues": [_queue(q, config) for q in config.queues.values()],
        "rules": [_rule(r) for r in config.rules],
        "remoteAEs": [
            {
                "aeTitle": ae.ae_title,
                "address": f"{ae.host}:{ae.port}",
                "tls": ae.tls,
                "installed": ae.installed,
                "description": ae.description,
            }
            for ae in config.remote_aes.values()
        ],
        "keycloakClients": [
            {"name": c.name, "summary": keycloak_text(c)} for c in config.keycloak_clients.values()
        ],
    }


def _webapp(app: WebApplication, config: Config) -> dict[str, Any]:
    return {
        "name": app.name,
        "url": app.url,
        "studiesUrl": app.studies_url,
        "serviceClasses": list(app.service_classes),
        "description": app.description,
        "installed": app.installed,
        "keycloakClient": app.keycloak_client,
        "properties": effective_properties(app.properties),
        "auth": auth_text(app, config),
        "exporterIDs": [
            e.exporter_id
            for e in config.exporters.values()
            if e.scheme != "dicom" and e.webapp_name == app.name
        ],
    }


def _exporter(exporter: Exporter) -> dict[str, Any]:
    return {
        "exporterID": exporter.exporter_id,
        "uri": exporter.uri,
        "queue": exporter.queue_name,
        "aeTitle": exporter.ae_title,
        "description": exporter.description,
        "schedules": [s.text for s in exporter.schedules],
    }


def _queue(queue: Queue, config: Config) -> dict[str, Any]:
    return {
        "name": queue.name,
        "description": queue.description,
        "installed": queue.installed,
        "maxTasksParallel": queue.max_tasks_parallel,
        "maxRetries": queue.max_retries,
        "retryDelay": _duration(queue.retry_delay),
        "retryDelayMultiplier": queue.retry_delay_multiplier,
        "maxRetryDelay": _duration(queue.max_retry_delay),
        "retryOnWarning": queue.retry_on_warning,
        "schedules": [s.text for s in queue.schedules],
        "purgeCompletedDelay": _duration(queue.purge_completed_delay),
        "purgeFailedDelay": _duration(queue.purge_failed_delay),
        "purgeWarningDelay": _duration(queue.purge_warning_delay),
        "purgeCanceledDelay": _duration(queue.purge_canceled_delay),
        "exporterIDs": [
            e.exporter_id for e in config.exporters.values() if e.queue_name == queue.name
        ],
    }


def _rule(rule: ExportRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "entity": rule.entity,
        "exporterIDs": list(rule.exporter_ids),
        "conditions": [
            f"{c.attribute}{'!=' if c.negate else '='}{'|'.join(c.values)}" for c in rule.conditions
        ],
        "delay": format_duration(rule.delay),
        "schedules": [s.text for s in rule.schedules],
    }
