"""``stowpair import`` and ``stowpair demo-data``.

``import`` runs the same non-blocking index and importer the service uses, on a reactor
started by :func:`twisted.internet.task.react`; it works whether or not the service is
running (SQLite WAL and a busy timeout let both write the index). The configuration's
export rules fire for every newly stored instance, into the service's task store
(:mod:`stowpair.archive.import_rules`).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any

from twisted.internet.defer import ensureDeferred

from stowpair.config.errors import ConfigError
from stowpair.config.model import Config
from stowpair.config.secret import SecretError
from stowpair.fsutil import log_file_problem

DEFAULT_CONFIG = Path("conf/stowpair.toml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = sub.add_parser(
        "import",
        help="store and index DICOM files and folders in the archive",
        description="Walk files and folders (nested, no DICOMDIR needed), store every DICOM "
        "instance in the archive by UID and index it. Non-DICOM and truncated files are "
        "skipped with the reason. Importing the same files again changes nothing.",
    )
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, metavar="CONFIG")
    imp.add_argument(
        "--no-fsync", action="store_true", help="skip fsync of each file (faster, less durable)"
    )
    imp.add_argument(
        "--json-log",
        metavar="PATH",
        default=None,
        help="JSON-lines log of the import's events; default: stowpair-import.json beside "
        "the service's JSON log ([logging] json_file); '-' disables it",
    )
    imp.set_defaults(handler=_import)

    demo = sub.add_parser(
        "demo-data",
        help="write generated demo studies (valid DICOM with real pixel data)",
        description="Write distinct CT studies as <DIR>/<Study>/<Series>/<SOP>.dcm, with "
        "pixel data derived from pydicom's bundled CT_small.dcm.",
    )
    demo.add_argument("directory", type=Path, metavar="DIR")
    demo.add_argument("--studies", type=_positive, default=1, metavar="K")
    demo.add_argument("--instances", type=_positive, default=10, metavar="N", help="per study")
    demo.add_argument("--size", type=_positive, default=100, metavar="KB", help="per instance")
    demo.add_argument(
        "--mix-transfer-syntaxes",
        action="store_true",
        help="one series per transfer syntax this installation can write "
        "(Explicit/Implicit VR LE, Big Endian, Deflated, RLE, JPEG-LS, JPEG 2000 lossless)",
    )
    demo.add_argument("--seed", type=int, default=None, metavar="S", help="reproducible output")
    demo.set_defaults(handler=_demo_data)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# -- import ---------------------------------------------------------------------------


def _import(args: argparse.Namespace) -> int:
    from stowpair.config.loader import load_config
    from stowpair.logs import JSONLogFile

    try:
        config = load_config(args.config)
    except ConfigError as e:
        for line in e.errors:
            print(line, file=sys.stderr)
        return 1
    missing = [p for p in args.paths if not p.exists()]
    if missing:  # a mistyped path is an error, not a file skipped inside a folder
        for path in missing:
            print(f"stowpair import: {path}: no such file or folder", file=sys.stderr)
        return 1
    json_log = import_log_path(args.json_log, config.json_log)
    problem = log_file_problem(json_log, "--json-log") if json_log is not None else None
    if problem is not None:
        print(f"stowpair import: {problem}", file=sys.stderr)
        return 1
    # pydicom warns about oddities it tolerates; the summary reports what matters.
    warnings.filterwarnings("ignore", module=r"pydicom\.")
    log_file = JSONLogFile(json_log) if json_log is not None else None
    if log_file is not None:
        log_file.open()
    try:
        return _react(lambda reactor: _import_async(reactor, args.paths, config, args))
    finally:
        if log_file is not None:
            log_file.close()


def import_log_path(option: str | None, service_log: Path | None) -> Path | None:
    """``--json-log``: a path, ``-`` for none; by default ``stowpair-import.json`` in the
    folder of the service's JSON log (none when the service writes none)."""
    if option is not None:
        return None if option == "-" else Path(option)
    if service_log is None:
        return None
    return service_log.with_name("stowpair-import.json")


def _react(main: Callable[[Any], Coroutine[Any, Any, int]]) -> int:
    """Run ``main(reactor)`` on a fresh reactor; its return value is the exit status."""
    from twisted.internet import task

    status = [1]

    async def run(reactor: Any) -> None:
        status[0] = await main(reactor)

    try:
        task.react(lambda reactor: ensureDeferred(run(reactor)))
    except SystemExit as e:
        if e.code not in (0, None):
            return e.code if isinstance(e.code, int) else 1
    return status[0]


async def _import_async(
    reactor: Any, paths: list[Path], config: Config, args: argparse.Namespace
) -> int:
    from stowpair.archive.import_rules import ImportRules
    from stowpair.archive.importer import Importer
    from stowpair.db.stores import open_stores

    try:
        stores = open_stores(config, reactor)
    except SecretError as e:
        print(f"stowpair import: [database] password: {e}", file=sys.stderr)
        return 1
    index, storage = stores.index, config.archive.storage
    # the export rules write their tasks to the task store the service uses
    rules = ImportRules.open(config, stores.tasks, reactor)

    async def close() -> None:
        await stores.tasks.close()
        await stores.close()

    # Ctrl-C stops the reactor: close the stores so their threads do not keep us alive.
    trigger = reactor.addSystemEventTrigger("before", "shutdown", lambda: ensureDeferred(close()))
    try:
        try:
            await index.opened
        except Exception as e:
            print(
                f"stowpair import: cannot open the archive index {stores.where}: {e}",
                file=sys.stderr,
            )
            return 1
        progress = _Progress(sys.stderr, reactor.seconds)
        importer = Importer(
            storage,
            index,
            reactor,
            reactor,
            reactor.getThreadPool(),
            fsync=not args.no_fsync,
            progress=progress.update,
            on_stored=rules.on_stored if rules is not None else None,
        )
        summary = await importer.run(paths)
        progress.finish()
        for path, reason in summary.skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        print(summary.line())
        for line in rules.lines() if rules is not None else []:
            print(line)
        return 0
    finally:
        reactor.removeSystemEventTrigger(trigger)
        await close()


class _Progress:
    """A one-line progress bar on stderr, only when it is a terminal."""

    WIDTH = 30

    def __init__(self, out: IO[str], now: Callable[[], float]) -> None:
        self.out = out
        self.now = now
        self.enabled = out.isatty()
        self.start = now()
        self.last = 0.0

    def update(self, summary: Any) -> None:
        t = self.now()
        if not self.enabled or (t - self.last < 0.1 and summary.files < summary.total):
            return
        self.last = t
        total = max(summary.total, 1)
        done = int(self.WIDTH * summary.files / total)
        bar = "#" * done + "-" * (self.WIDTH - done)
        self.out.write(
            f"\r[{bar}] {summary.files}/{summary.total} files, "
            f"{summary.bytes / 1e6:.1f} MB, {len(summary.skipped)} skipped, {t - self.start:.1f} s"
        )
        self.out.flush()

    def finish(self) -> None:
        if self.enabled:
            self.out.write("\r\x1b[K")
            self.out.flush()


# -- demo-data -----------------------------------------------------------------------


def _demo_data(args: argparse.Namespace) -> int:
    from pydicom.uid import ExplicitVRLittleEndian

    from stowpair.archive.demo import generate_demo_study, mix_syntaxes

    syntaxes = mix_syntaxes() if args.mix_transfer_syntaxes else (ExplicitVRLittleEndian,)
    start = time.perf_counter()
    written = 0
    size = 0
    for study_no in range(args.studies):
        paths = generate_demo_study(
            args.directory, args.instances, args.size, args.seed, syntaxes, study_no
        )
        written += len(paths)
        size += sum(p.stat().st_size for p in paths)
    elapsed = time.perf_counter() - start
    names = ", ".join(ts.name for ts in syntaxes)
    print(
        f"wrote {written} instances in {args.studies} "
        f"{'study' if args.studies == 1 else 'studies'} ({size / 1e6:.1f} MB, {names}) "
        f"to {args.directory} in {elapsed:.2f} s"
    )
    return 0
