"""A loopback TCP proxy that misbehaves on purpose: it slows uploads and cuts connections.

Client → server bytes may be throttled (``rate`` bytes/s) so requests stay in flight
long enough to kill the server mid-body, and each accepted connection is, with
probability ``cut_rate`` (seeded, drawn in accept order), closed on both sides after a
random number of client bytes in ``cut_after`` — a connection dropped mid-body.
Threads and blocking sockets: test code only.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field

CHUNK = 16 * 1024


@dataclass
class ProxyCounts:
    connections: int = 0
    cuts: int = 0
    bytes_up: int = 0
    cut_points: list[int] = field(default_factory=list)


class FaultyProxy:
    """Listens on 127.0.0.1:``port`` (free) and forwards to 127.0.0.1:``target_port``."""

    def __init__(
        self,
        target_port: int,
        seed: int = 0,
        cut_rate: float = 0.0,
        cut_after: tuple[int, int] = (1024, 64 * 1024),
        rate: float | None = None,
    ) -> None:
        self.target_port = target_port
        self.rng = random.Random(seed)
        self.cut_rate = cut_rate
        self.cut_after = cut_after
        self.rate = rate
        self.counts = ProxyCounts()
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = int(self._server.getsockname()[1])
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            cut = None
            if self.rng.random() < self.cut_rate:
                cut = self.rng.randint(*self.cut_after)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()  # the server is down: the client sees a refused/closed connection
                continue
            upstream.settimeout(None)
            with self._lock:
                self.counts.connections += 1
            pair = _Pair(client, upstream)
            threading.Thread(target=self._up, args=(pair, cut), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, pair), daemon=True).start()

    def _up(self, pair: _Pair, cut: int | None) -> None:
        sent = 0
        try:
            while True:
                data = pair.client.recv(CHUNK)
                if not data:
                    break
                if cut is not None and sent + len(data) >= cut:
                    pair.upstream.sendall(data[: cut - sent])
                    with self._lock:
                        self.counts.cuts += 1
                        self.counts.cut_points.append(cut)
                        self.counts.bytes_up += cut - sent
                    break
                pair.upstream.sendall(data)
                sent += len(data)
                with self._lock:
                    self.counts.bytes_up += len(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        pair.close()


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream

    def close(self) -> None:
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _pump(src: socket.socket, dst: socket.socket, pair: _Pair) -> None:
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    pair.close()
