"""A private PostgreSQL 15 server for a test that restarts it (the machine's shared one is
never restarted): initdb into a temp folder, a free loopback port, trust authentication.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user
(``runuser``). When that cannot be done the test is skipped with the reason, or fails
under ``STOWPAIR_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.postgres import unavailable
from tests.support.peers import free_port

BIN = Path(os.environ.get("STOWPAIR_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"


@dataclass
class PrivatePostgres:
    data: Path
    port: int
    prefix: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://root@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.data / "server.log"), "start")

    def stop(self) -> None:
        """Fast shutdown: sessions are cut, as when the server restarts or dies."""
        self._ctl("-m", "fast", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (BIN / "initdb").exists():
        unavailable(f"PostgreSQL server programs not found in {BIN} (postgresql-15)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            unavailable("runuser is needed to run a private PostgreSQL as a non-root user")
        prefix = ["runuser", "-u", SERVER_USER, "--"]
    folder = Path(tempfile.mkdtemp(prefix="stowpair-pg-"))
    data = folder / "data"
    try:
        if prefix:
            shutil.chown(folder, SERVER_USER)
        try:
            subprocess.run(
                [*prefix, str(BIN / "initdb"), "-D", str(data), "-U", "root", "--auth=trust",
                 "--no-sync", "-E", "UTF8"],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        except (subprocess.CalledProcessError, OSError, LookupError) as e:
            detail = getattr(e, "stderr", b"") or b""
            unavailable(f"initdb of a private PostgreSQL failed: {e} {detail[-300:]!r}")
        server = PrivatePostgres(data, free_port(), prefix)
        server.start()
        try:
            yield server
        finally:
            try:
                server.stop()
            except subprocess.SubprocessError:
                pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)
