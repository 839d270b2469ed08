"""The archive's STOW-RS ingest endpoint, dcm4chee style.

``POST /dcm4chee-arc/aets/{AET}/rs/studies[/{StudyInstanceUID}]`` runs the receiver's
:class:`~stowpair.receiver.resource.StowResource` (the same code as stowrsd: streaming
parser, checks, Store Instances Response) over an :class:`~stowpair.archive.backend.ArchiveStorage`.

Two ways to mount it:

* :func:`make_ingest_resource` — one AE title; mount it where the path left to resolve
  is ``studies[/{uid}]`` (i.e. at ``/dcm4chee-arc/aets/{AET}/rs``).
* :class:`AetsResource` — mount it as ``/dcm4chee-arc/aets``: it checks the AE title
  (unknown → 404 ``{"errorMessage": "No such Application Entity: X"}``, as dcm4chee)
  and hands other ``rs`` paths (export triggers) to an optional resource.

The Site must use :class:`~stowpair.receiver.request.StreamingRequest` as its request
factory for bodies to stream (otherwise twisted.web buffers them first; still correct).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from stowpair.receiver.resource import StowResource
from stowpair.receiver.settings import ReceiverSettings
from stowpair.receiver.storage import BlockingRunner, StorageBackend


def make_ingest_resource(
    aet: str,
    backend: StorageBackend,
    reactor: IReactorTime,
    run_blocking: BlockingRunner,
    settings: ReceiverSettings | None = None,
) -> StowResource:
    """A STOW-RS resource storing into ``backend`` for AE title ``aet``.

    It answers ``studies`` and ``studies/{uid}`` relative to where it is mounted; the AE
    title becomes the instances' source (``SendingApplicationEntityTitle`` for rules).
    ``settings.path`` is ignored (the mount point is the service path).
    """
    base = settings or ReceiverSettings(server_name=f"stowpair-{aet}")
    mounted = ReceiverSettings(
        path="/",
        max_request_size=base.max_request_size,
        max_part_size=base.max_part_size,
        accept_transfer_syntaxes=base.accept_transfer_syntaxes,
        bearer_token=base.bearer_token,
        basic_auth=base.basic_auth,
        limits=base.limits,
        server_name=base.server_name,
    )
    return StowResource(mounted, backend, reactor, run_blocking, source=aet)


class JSONError(Resource):
    """A leaf answering every method with ``{"errorMessage": ...}`` and a status."""

    isLeaf = True

    def __init__(self, code: int, message: str) -> None:
        super().__init__()
        self.code = code
        self.message = message

    def render(self, request: Request) -> bytes:
        request.setResponseCode(self.code)
        request.setHeader("Content-Type", "application/json")
        return json.dumps({"errorMessage": self.message}).encode()


def is_ingest_path(postpath: list[bytes]) -> bool:
    """True for ``studies`` or ``studies/{uid}`` (a trailing slash allowed)."""
    segments = postpath[:-1] if postpath and postpath[-1] == b"" else postpath
    return 1 <= len(segments) <= 2 and segments[0] == b"studies"


class _RsResource(Resource):
    """``/aets/{AET}/rs``: ingest paths to the STOW-RS resource, others elsewhere."""

    def __init__(self, stow: StowResource, other: IResource | None) -> None:
        super().__init__()
        self.stow = stow
        self.other = other

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        postpath = [path, *(request.postpath or [])]
        if is_ingest_path(postpath):
            # The STOW-RS resource matches the rest of the path itself: give it back.
            if request.prepath and request.postpath is not None:
                request.postpath.insert(0, request.prepath.pop())
            return self.stow
        if self.other is not None:
            return self.other.getChildWithDefault(path, request)
        return JSONError(404, f"no such resource: {(request.path or b'').decode('latin-1')}")


class AetsResource(Resource):
    """``/dcm4chee-arc/aets``: ``{AET}/rs/studies[/{uid}]`` for each known AE title.

    ``known_aets`` is called per request, so a configuration reload takes effect at
    once; ``other_rs`` (optional) serves every other path under ``{AET}/rs`` (the
    export triggers of the REST API).
    """

    def __init__(
        self,
        known_aets: Callable[[], Iterable[str]],
        make_stow: Callable[[str], StowResource],
        other_rs: IResource | None = None,
    ) -> None:
        super().__init__()
        self.known_aets = known_aets
        self.make_stow = make_stow
        self.other_rs = other_rs
        self._stows: dict[str, StowResource] = {}

    def getChild(self, path: bytes, request: Request) -> IResource:
        aet = path.decode("latin-1")
        if aet not in set(self.known_aets()):
            return JSONError(404, f"No such Application Entity: {aet}")
        prepath, postpath = request.prepath, request.postpath
        if prepath is None or not postpath or postpath[0] != b"rs":
            return JSONError(404, f"no such resource: {(request.path or b'').decode('latin-1')}")
        prepath.append(postpath.pop(0))  # consume "rs"
        stow = self._stows.get(aet)
        if stow is None:
            stow = self._stows[aet] = self.make_stow(aet)
        return _RsResource(stow, self.other_rs)
