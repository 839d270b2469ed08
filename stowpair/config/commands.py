"""``stowpair config ...`` subcommands (placeholder until the config loader lands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="check and import configurations")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = csub.add_parser("check", help="validate a configuration file and print a summary")
    check.add_argument("file", nargs="?", default="conf/stowpair.toml", type=Path)
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    try:
        load_config(args.file)
    except ConfigError as e:
        for line in e.errors:
            print(line)
        return 1
    print(f"{args.file}: OK")
    return 0
