"""The archive's STOW-RS ingest endpoint, dcm4chee style.

``POST /dcm4chee-arc/aets/{AET}/rs/studies[/{StudyInstanceUID}]`` runs the receiver's
:class:`~stowpair.receiver.resource.StowResource` (the same code as stowrsd: streaming
parser, checks, Store Instances Response) over an :class:`~stowpair.archive.backend.ArchiveStorage`.

:func:`make_ingest_resource` serves one AE title; the REST router
(:mod:`stowpair.api.dcm4chee`) checks the AE title (unknown → 404
``{"errorMessage": "No such Application Entity: X"}``, as dcm4chee) and mounts it where the
path left to resolve is ``studies[/{uid}]`` (i.e. at ``/dcm4chee-arc/aets/{AET}/rs``).

The Site must use :class:`~stowpair.receiver.request.StreamingRequest` as its request
factory for bodies to stream (otherwise twisted.web buffers them first; still correct).
"""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.interfaces import IReactorTime

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
    ``settings.path`` is ignored (the mount point is the service path). Requests from
    pages of other origins are refused (403), as on every state-changing REST route.
    """
    base = settings or ReceiverSettings(server_name=f"stowpair-{aet}")
    mounted = replace(base, path="/", endpoint="ingest", refuse_cross_site=True)
    return StowResource(mounted, backend, reactor, run_blocking, source=aet)
