"""twistd service makers for stowpair. Imports stay lazy: `twistd --help` loads this file."""

from typing import Any

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IServiceMaker, IPlugin)
class _LazyServiceMaker:
    def __init__(self, tapname: str, description: str, options: str, make: str) -> None:
        self.tapname = tapname
        self.description = description
        self._options = options
        self._make = make

    @property
    def options(self) -> Any:
        from stowpair import tap

        return getattr(tap, self._options)

    def makeService(self, options: Any) -> Any:
        from stowpair import tap

        return getattr(tap, self._make)(options)


stowpair = _LazyServiceMaker(
    "stowpair",
    "STOW-RS export engine (archive, queue, exporters, REST API) with a built-in stowrsd",
    "StowpairOptions",
    "make_stowpair_service",
)
stowrsd = _LazyServiceMaker(
    "stowrsd",
    "A strict STOW-RS origin server (dcm4che stowrsd compatible options)",
    "StowrsdOptions",
    "make_stowrsd_service",
)
