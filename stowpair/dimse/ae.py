"""pynetdicom Application Entities as stowpair uses them, and pynetdicom's own log.

pynetdicom is configured once per process (:func:`configure_pynetdicom`): no per-PDU
debug handlers (they cost more than the transfer itself), and data sets sent from files
stream as stored (``STORE_SEND_CHUNKED_DATASET``: the exporter always sends a file whose
transfer syntax is the accepted one, decompressed first when needed). Its warnings and
errors, logged with the standard :mod:`logging` module in its threads, are forwarded to
the Twisted log as ``dimse.pynetdicom`` events.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger

from stowpair.logs import register_events

register_events({"dimse.pynetdicom": ("level_name", "message")})

_configured = False


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom settings; idempotent."""
    global _configured
    if _configured:
        return
    from pynetdicom import _config

    _config.LOG_HANDLER_LEVEL = "none"
    _config.STORE_SEND_CHUNKED_DATASET = True
    _configured = True


def new_ae(
    ae_title: str,
    *,
    max_pdu_length: int,
    acse_timeout: float | None,
    dimse_timeout: float | None,
    network_timeout: float | None,
    connection_timeout: float | None = None,
) -> Any:
    """A pynetdicom ``AE`` with stowpair's settings (no contexts yet)."""
    configure_pynetdicom()
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    ae.maximum_pdu_size = max_pdu_length
    ae.acse_timeout = acse_timeout
    ae.dimse_timeout = dimse_timeout
    ae.network_timeout = network_timeout
    ae.connection_timeout = connection_timeout
    return ae


def no_delay(event: Any) -> None:
    """EVT_CONN_OPEN handler: TCP_NODELAY on the association's socket. DIMSE is a
    request/response protocol of small PDUs: with Nagle's algorithm and delayed ACKs a
    peer's last fragment can wait ~40 ms per C-STORE (dcmtk needs TCP_NODELAY=1 in its
    environment for the same reason)."""
    try:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # no socket (yet) or not TCP: nothing to tune


class PynetdicomLog(logging.Handler):
    """Forwards pynetdicom's WARNING and worse records to the Twisted log, on the reactor."""

    log = Logger()

    def __init__(self, reactor: IReactorFromThreads) -> None:
        super().__init__(logging.WARNING)
        self._reactor = reactor

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        level = "warn" if record.levelno < logging.ERROR else "error"
        self._reactor.callFromThread(
            getattr(self.log, level),
            "pynetdicom: {message}",
            event="dimse.pynetdicom",
            level_name=record.levelname,
            message=message,
        )

    def install(self) -> None:
        logging.getLogger("pynetdicom").addHandler(self)

    def remove(self) -> None:
        logging.getLogger("pynetdicom").removeHandler(self)
