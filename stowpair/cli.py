"""The ``stowpair`` console script: subcommands for configuration, import, export, tasks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]

# Each entry: module path with a ``register(subparsers)`` function. Subsystems add
# their commands here; keep imports lazy so `stowpair --help` stays fast.
COMMAND_MODULES: tuple[str, ...] = (
    "stowpair.config.commands",
    "stowpair.archive.commands",
    "stowpair.queue.commands",
    "stowpair.dimse.commands",
    "stowpair.auth.commands",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="stowpair",
        description="stowpair: dcm4chee-style STOW-RS exporter and stowrsd emulator.",
        epilog="Run the service with: twistd -n stowpair -c conf/stowpair.toml",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
