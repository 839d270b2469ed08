"""PostgreSQL for the stores of a cluster: a psycopg connection pool driven from a thread
pool, so the reactor thread never waits on the network or a lock.

Each :meth:`PostgresDatabase.run` is one transaction on a pooled connection. A connection
that broke (server restarted, network cut) is noticed when it is taken from the pool and
replaced; an operation that cannot reach the server fails with
:class:`~stowpair.db.errors.DatabaseUnavailable`, which callers treat as "try again later".
Sessions are set up so that nothing waits forever: a statement times out, a lock wait
times out, and a transaction left idle (a node paused mid-transaction) is ended by the
server, releasing its row locks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from stowpair.db.adapter import PostgresDb
from stowpair.db.errors import DatabaseUnavailable
from stowpair.db.migrate import migrate

T = TypeVar("T")

#: Seconds: connecting, opening at start, waiting for a pooled connection (short: while
#: the server is away, callers learn it quickly), one statement, a lock wait, a
#: transaction idle between two statements.
CONNECT_TIMEOUT = 5
OPEN_TIMEOUT = 10.0
POOL_TIMEOUT = 3.0
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 10_000
IDLE_IN_TRANSACTION_MS = 5_000
_PENDING = object()


def describe(url: str) -> str:
    """The URL without its password, for messages: ``postgresql://user@host:port/db``."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparseable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def url_problem(url: str) -> str | None:
    """None when ``url`` is a PostgreSQL connection URL psycopg accepts, else why not."""
    if not url.startswith(("postgresql://", "postgres://")):
        return "must start with postgresql://"
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        return f"is not a valid connection URL ({str(e).splitlines()[0]})"
    return None


class PostgresDatabase:
    """A pool of PostgreSQL connections and the threads that use them.

    ``open()`` connects and brings the schema up to date (:mod:`stowpair.db.migrate`);
    ``run(work)`` runs ``work(db)`` in one transaction on a worker thread and fires on
    the reactor thread; ``close()`` closes the pool and stops the threads.
    """

    def __init__(
        self,
        url: str,
        reactor: IReactorThreads,
        *,
        password: str | None = None,
        size: int = 4,
        application_name: str = "stowpair",
    ) -> None:
        self.url = url
        self.where = describe(url)
        self._reactor = reactor
        options = (
            f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
            f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
        )
        kwargs: dict[str, Any] = {
            "autocommit": True,  # transactions are explicit: conn.transaction()
            "application_name": application_name[:63],
            "connect_timeout": CONNECT_TIMEOUT,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "options": options,
        }
        if password is not None:
            kwargs["password"] = password
        self._pool = ConnectionPool(
            url,
            kwargs=kwargs,
            min_size=1,
            max_size=size,
            open=False,
            name=f"stowpair-{application_name}"[:63],
            timeout=POOL_TIMEOUT,
            check=ConnectionPool.check_connection,
            reconnect_timeout=POOL_TIMEOUT,
        )
        self._threads = ThreadPool(minthreads=0, maxthreads=size, name="stowpair-postgres")
        self._started = False
        self._closed = False
        #: None until open() is called; then the outcome of opening (version or Failure).
        self._opened: object = None
        self._waiting: list[Deferred[None]] = []

    def open(self) -> Deferred[int]:
        """Connect and migrate; fires with the schema version (DatabaseUnavailable or
        SchemaError on failure). Operations asked for meanwhile wait for it."""
        self._threads.start()
        self._started = True
        self._opened = _PENDING
        d = self._defer(self._open)
        d.addBoth(self._open_done)
        return d

    def _open_done(self, result: Any) -> Any:
        self._opened = result
        waiting, self._waiting = self._waiting, []
        for w in waiting:
            if isinstance(result, Failure):
                w.errback(result)
            else:
                w.callback(None)
        return result

    def _when_open(self) -> Deferred[None]:
        if self._opened is _PENDING:
            d: Deferred[None] = Deferred()
            self._waiting.append(d)
            return d
        if isinstance(self._opened, Failure):
            return fail(self._opened)
        return succeed(None)

    def _open(self) -> int:
        try:
            self._pool.open(wait=True, timeout=OPEN_TIMEOUT)
        except PoolTimeout:
            raise DatabaseUnavailable(
                f"cannot connect to {self.where} within {OPEN_TIMEOUT:.0f}s; is PostgreSQL"
                " running and reachable, and the URL in [database] right?"
            ) from None
        return self._in_transaction(migrate)

    def run(self, work: Callable[[PostgresDb], T]) -> Deferred[T]:
        """Run ``work`` in one transaction on a worker thread."""
        if self._closed:
            raise RuntimeError(f"the database {self.where} is closed")
        d = self._when_open()
        return d.addCallback(lambda _: self._defer(lambda: self._in_transaction(work)))

    def blocking(self, f: Callable[[], T]) -> Deferred[T]:
        """Run other blocking work (no database) on the same worker threads."""
        return self._defer(f)

    def _defer(self, f: Callable[[], T]) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._threads, f)

    def _in_transaction(self, work: Callable[[PostgresDb], T]) -> T:
        try:
            with self._pool.connection() as conn, conn.transaction():
                return work(PostgresDb(conn))
        except PoolTimeout:
            raise DatabaseUnavailable(
                f"no connection to {self.where} within {POOL_TIMEOUT:.0f}s"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DatabaseUnavailable(f"{self.where}: {reason}") from None

    def close(self) -> Deferred[None]:
        """Close the pool (on a worker thread), then stop the threads. Idempotent."""
        if self._closed or not self._started:
            self._closed = True
            return succeed(None)
        self._closed = True
        d = self._defer(lambda: self._pool.close(timeout=5.0))

        def stop(result: object) -> None:
            self._threads.stop()

        return d.addBoth(stop)
