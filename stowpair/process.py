"""The top service of a twistd tap (``stowpair``, ``stowrsd``): what a process owes its
operator from the first event to the last.

* The JSON log is opened before anything starts and stays until the process exits, so
  it holds the drain on shutdown (cancelled exports, tasks set back to SCHEDULED, pools
  stopped) and twistd's own last lines, not only what came before ``shutdown``.
* A listener that cannot start (a busy port) ends the process before the reactor runs:
  one line on stderr, a ``startup.failed`` event, exit status 1. A supervisor then sees
  a failed start instead of a process that runs without its port.
* ``startup`` is logged once every child started, ``shutdown`` when stopping begins.
"""

from __future__ import annotations

import atexit
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from stowpair.logs import JSONLogFile
from stowpair.web.listen import ListenError


class StartupError(Exception):
    """A service could not be prepared (before the reactor runs); ``str()`` is one
    sentence for people. The builder of the service tree ends the process with it."""


class ProcessService(MultiService):
    """Parent of a tap's services; see the module docstring."""

    log = Logger()

    def __init__(
        self,
        tap: str,
        summary: dict[str, Any],
        json_log: Path | None,
        stderr: IO[str] | None = None,
        keep_log_until_exit: bool = True,
    ) -> None:
        super().__init__()
        self.tap = tap
        self.summary = summary
        self.json_log = JSONLogFile(json_log) if json_log is not None else None
        # twistd sends sys.stderr to the log once it runs; the line is for the terminal.
        self._stderr = stderr
        self._keep_log = keep_log_until_exit

    def startService(self) -> None:
        if self.json_log is not None:
            self.json_log.open()
            if self._keep_log:
                atexit.register(self.json_log.close)
        try:
            super().startService()
        except ListenError as e:
            self.log.error("{tap} did not start: {error}", tap=self.tap, error=str(e),
                           event="startup.failed")  # fmt: skip
            print(f"{self.tap}: {e}", file=self._stderr or sys.__stderr__, flush=True)
            raise SystemExit(1) from None
        self.log.info("{tap} started: {summary}", tap=self.tap, summary=self.summary,
                      event="startup")  # fmt: skip

    def stopService(self) -> Deferred[Any]:
        self.log.info("{tap} stopping", tap=self.tap, event="shutdown")
        d: Deferred[Any] = super().stopService()
        if not self._keep_log:
            d.addBoth(self._close_log)
        return d

    def _close_log(self, result: Any) -> Any:
        if self.json_log is not None:
            self.json_log.close()
        return result


class OnHangup(Service):
    """SIGHUP calls ``reload`` on the reactor thread (``kill -HUP``; the REST API's
    ``POST /dcm4chee-arc/ctrl/reload`` does the same)."""

    def __init__(self, reload: Callable[[], Any], reactor: Any) -> None:
        self.reload = reload
        self.reactor = reactor
        self._previous: Any = None

    def startService(self) -> None:
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._hangup)

    def _hangup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self.reload)

    def stopService(self) -> None:
        super().stopService()
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
