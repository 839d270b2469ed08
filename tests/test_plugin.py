"""Plugin discovery and the taps' wiring."""

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

from stowpair import tap


def test_both_tapnames_discovered() -> None:
    """When twistd scans its plugins, both stowpair and stowrsd are found."""
    names = {p.tapname for p in getPlugins(IServiceMaker)}
    assert {"stowpair", "stowrsd"} <= names


def test_stowrsd_bind_default_is_loopback() -> None:
    """When no --bind is given, stowrsd listens on 127.0.0.1:18080."""
    options = tap.StowrsdOptions()
    options.parseOptions([])
    assert (options["host"], options["port"]) == ("127.0.0.1", 18080)
