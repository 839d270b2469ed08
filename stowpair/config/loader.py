"""TOML loader (placeholder until the full model loader lands)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from stowpair.config.errors import ConfigError
from stowpair.config.model import Config


def load_config(path: Path) -> Config:
    try:
        with path.open("rb") as f:
            tomllib.load(f)
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    return Config(source=path)
