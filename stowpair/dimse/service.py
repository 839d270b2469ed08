"""The archive's DICOM listener: a pynetdicom Storage SCP (and Verification SCP).

:meth:`DimseService.listen` binds and starts pynetdicom's threaded server (its accept
loop and each association run in pynetdicom's threads); :meth:`stopService` stops
accepting, lets the stores already handed to the reactor finish (their responses are
sent), then aborts the associations still open.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from stowpair.config.model import DimseConfig
from stowpair.dimse.ae import PynetdicomLog, new_ae
from stowpair.dimse.bridge import ReactorBridge
from stowpair.dimse.contexts import scp_contexts
from stowpair.dimse.scp import Archive, StoreSCP
from stowpair.dimse.tls import DimseTLSError, server_context
from stowpair.logs import register_events

register_events({"dimse.stopped": ("aborted",)})


class DimseService(Service):
    """C-STORE SCP storing into ``archive`` (see the module docstring)."""

    log = Logger()

    def __init__(self, cfg: DimseConfig, archive: Archive, reactor: Any) -> None:
        self.cfg = cfg
        self.reactor = reactor
        self.bridge = ReactorBridge(reactor)
        self.scp = StoreSCP(archive, self.bridge, reactor)
        self._pynetdicom_log = PynetdicomLog(reactor)
        self._server: Any = None
        self.port: int | None = None

    def listen(self) -> None:
        """Bind and start accepting associations; CannotListenError says why not."""
        cfg = self.cfg
        host, port = cfg.listener.host, cfg.listener.port
        try:
            ssl_context = server_context(cfg)
        except DimseTLSError as e:
            raise CannotListenError(host, port, e) from None
        ae = new_ae(
            cfg.ae_title,
            max_pdu_length=cfg.max_pdu_length,
            acse_timeout=cfg.acse_timeout,
            dimse_timeout=cfg.dimse_timeout,
            network_timeout=cfg.network_timeout,
        )
        ae.maximum_associations = cfg.max_associations
        ae.require_called_aet = True
        ae.require_calling_aet = list(cfg.accepted_calling_aets)
        ae.supported_contexts = scp_contexts()
        self._pynetdicom_log.install()
        try:
            self._server = ae.start_server(
                (host, port), block=False, evt_handlers=self.scp.handlers(), ssl_context=ssl_context
            )
        except OSError as e:
            self._pynetdicom_log.remove()
            raise CannotListenError(host, port, e) from None
        self.port = int(self._server.server_address[1])
        scheme = "dicom-tls" if ssl_context else "dicom"
        self.log.info(
            "DICOM C-STORE SCP {ae_title} listening on {url}",
            role="dimse",
            host=host,
            port=self.port,
            url=f"{scheme}://{cfg.ae_title}@{host}:{self.port}",
            ae_title=cfg.ae_title,
            event="listening",
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        server, self._server = self._server, None
        if server is None:
            return self.bridge.close()
        pool = self.reactor.getThreadPool()
        d: Deferred[Any] = deferToThreadPool(self.reactor, pool, server.shutdown)
        d.addBoth(lambda _: self.bridge.close())
        d.addCallback(lambda _: deferToThreadPool(self.reactor, pool, _abort_all, server))
        d.addCallback(self._stopped)
        return d

    def _stopped(self, aborted: int) -> None:
        self._pynetdicom_log.remove()
        self.log.info(
            "DICOM listener stopped ({aborted} associations aborted)",
            event="dimse.stopped",
            aborted=aborted,
        )


def _abort_all(server: Any) -> int:
    """Abort the associations still open (blocking; runs in a thread)."""
    open_ = [a for a in server.active_associations if a.is_established]
    for assoc in open_:
        assoc.abort()
    return len(open_)
