"""A stowpair service with its DICOM listener on loopback, and a pynetdicom SCU for tests.

The SCU blocks: tests run it with ``deferToThread`` so the reactor keeps serving the SCP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.filereader import read_file_meta_info
from twisted.internet import reactor as _reactor
from twisted.internet.task import deferLater

from stowpair.config.loader import load_config
from stowpair.dimse.ae import new_ae
from stowpair.service import StowpairService

reactor: Any = _reactor

CONFIG = """
base_dir = "."
demo_on_empty = false
[device]
name = "dimse-test"
ae_titles = ["STOWPAIR"]
task_polling_interval = "PT1S"
[rest]
port = 0
[emulator]
enabled = false
[logging]
json_file = "-"
[dimse]
listen = "127.0.0.1:0"
ae_title = "STOWPAIR"
{dimse}
{extra}
"""


async def start_service(folder: Path, dimse: str = "", extra: str = "") -> StowpairService:
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "stowpair.toml"
    conf.write_text(CONFIG.format(dimse=dimse, extra=extra))
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    await service.ready
    return service


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"condition not met within {seconds}s")


@dataclass
class Sent:
    """What a test SCU association did: established or not, and each C-STORE status."""

    established: bool
    statuses: list[int | None]
    rejection: str = ""


def c_store(
    port: int,
    files: Sequence[Path],
    calling: str = "MODALITY",
    called: str = "STOWPAIR",
) -> Sent:
    """Blocking: one association, each file sent as stored (raw), statuses returned."""
    ae = new_ae(
        calling, max_pdu_length=65536, acse_timeout=10, dimse_timeout=30, network_timeout=30
    )
    for meta in {
        (str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID))
        for m in (read_file_meta_info(f) for f in files)
    }:
        ae.add_requested_context(meta[0], [meta[1]])
    if not files:
        ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        primitive = assoc.acceptor.primitive
        reason = primitive.reason_str if primitive is not None else "no answer"
        return Sent(False, [], reason)
    statuses: list[int | None] = []
    for path in files:
        answer = assoc.send_c_store(path)
        statuses.append(answer.get("Status") if answer is not None else None)
    assoc.release()
    return Sent(True, statuses)


def c_echo(port: int, calling: str = "MODALITY", called: str = "STOWPAIR") -> int | None:
    ae = new_ae(
        calling, max_pdu_length=16384, acse_timeout=10, dimse_timeout=10, network_timeout=10
    )
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return None
    answer = assoc.send_c_echo()
    assoc.release()
    return answer.get("Status") if answer is not None else None


def dataset_bytes(file: Path | bytes) -> bytes:
    """The data set of a PS3.10 file (or its bytes), without preamble and File Meta."""
    raw = file.read_bytes() if isinstance(file, Path) else file
    return raw[144 + int.from_bytes(raw[140:144], "little") :]


class Destination:
    """A pynetdicom Storage SCP standing in for a remote AE: it keeps what it receives
    (PS3.10 bytes by SOP Instance UID) and answers ``status_for(sop_uid)``."""

    def __init__(
        self,
        ae_title: str = "DEST",
        syntaxes: Sequence[str] | None = None,
        status_for: Callable[[str], int] = lambda sop: 0x0000,
    ) -> None:
        from pynetdicom import AllStoragePresentationContexts, evt

        from stowpair.dimse.contexts import scp_transfer_syntaxes

        self.received: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.status_for = status_for
        ae = new_ae(
            ae_title, max_pdu_length=65536, acse_timeout=10, dimse_timeout=30, network_timeout=30
        )
        ae.require_called_aet = True
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(
                str(cx.abstract_syntax), list(syntaxes or scp_transfer_syntaxes())
            )
        self.server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self.port = int(self.server.server_address[1])

    def _store(self, event: Any) -> int:
        sop = str(event.request.AffectedSOPInstanceUID)
        self.calls.append(sop)
        status = self.status_for(sop)
        if status == 0x0000:
            self.received[sop] = event.encoded_dataset()
        return status

    def stop(self) -> None:
        self.server.shutdown()
