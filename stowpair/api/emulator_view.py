"""``GET /monitor/emulator``: the last requests the built-in stowrsd emulator answered
(our addition; the console's emulator page).

``{"enabled", "url", "capacity", "received", "requests": [...]}``: ``received`` counts
every request since the service started, ``requests`` holds the newest ``capacity`` at
most, newest first (``?limit=`` for fewer). Kept in memory only; the JSON log keeps them
all (``receiver.request``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from stowpair.api.params import parse_int
from stowpair.api.respond import Answer, json_answer, render_async
from stowpair.api.taskjson import format_time
from stowpair.receiver.recent import ReceivedRequest

if TYPE_CHECKING:
    from stowpair.api.dcm4chee import Dcm4cheeApi


class EmulatorResource(Resource):
    """``GET /monitor/emulator``."""

    isLeaf = True

    def __init__(self, api: Dcm4cheeApi) -> None:
        super().__init__()
        self.api = api

    def render_GET(self, request: Request) -> int:
        return render_async(request, self._answer)

    async def _answer(self, request: Request) -> Answer:
        limit = parse_int(request.args, "limit", 1, 99999)
        emulator = self.api.emulator
        if emulator is None:
            return json_answer(200, {"enabled": False, "requests": []})
        recent = emulator.resource.recent
        return json_answer(
            200,
            {
                "enabled": True,
                "url": _url(emulator),
                "capacity": recent.capacity,
                "received": recent.total,
                "requests": [request_json(r) for r in recent.newest_first(limit)],
            },
        )


def _url(emulator: Any) -> str | None:
    """The emulator's STOW-RS base URL as it listens (the port may have been 0)."""
    port = emulator.port
    if port is None:
        return None
    address: Any = port.getHost()
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"http://{host}:{address.port}{emulator.resource.settings.path}"


def request_json(entry: ReceivedRequest) -> dict[str, Any]:
    """One request; ``failureReasons`` maps hex Failure Reasons to instance counts."""
    body: dict[str, Any] = {
        "time": format_time(entry.time),
        "method": entry.method,
        "path": entry.path,
        "peer": entry.peer,
        "status": entry.status,
        "parts": entry.parts,
        "stored": entry.stored,
        "failed": entry.failed,
        "bytes": entry.bytes,
        "elapsed": round(entry.elapsed, 3),
    }
    if entry.failure_reasons:
        body["failureReasons"] = {f"{code:04X}": n for code, n in entry.failure_reasons.items()}
    if entry.error:
        body["error"] = entry.error
    return body
