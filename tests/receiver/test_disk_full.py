"""Regression (found by tests/reliability): a full disk while a part is written.

The temp-file write used to raise ENOSPC on the reactor thread: an unhandled error, a
dropped connection instead of an answer, and the partial temp file kept taking space.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from stowpair.dicom.response import parse_json
from stowpair.receiver.storage import TempPart
from tests.receiver.conftest import Stub, answer, leftover_parts
from tests.support.receiver import content_type, encode, make_dataset, multipart


def full_after(monkeypatch: pytest.MonkeyPatch, budget: int, on: str) -> None:
    """Temp files accept ``budget`` bytes in all, then ENOSPC (on write or on close)."""
    left = [budget]
    real_write, real_close = TempPart.write, TempPart.close

    def write(self: TempPart, data: bytes) -> None:
        if on == "write" and len(data) > left[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        left[0] -= len(data)
        real_write(self, data)

    def close(self: TempPart) -> None:
        if on == "close" and left[0] < 0 and not self.file.closed:
            self.file.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        real_close(self)

    monkeypatch.setattr(TempPart, "write", write)
    monkeypatch.setattr(TempPart, "close", close)


@pytest.mark.parametrize("on", ["write", "close"], ids=["write-fails", "flush-at-close-fails"])
def test_full_disk_fails_instance_with_a700(
    make_stub: Callable[..., Stub], monkeypatch: pytest.MonkeyPatch, on: str
) -> None:
    """When the disk fills up during the second part, the first is stored, the second is
    listed with A700 under its UIDs, and no temp or partial file stays."""
    stub = make_stub()
    first, second = encode(make_dataset()), make_dataset(source="MR_small.dcm")
    full_after(monkeypatch, len(first) + 1000, on)
    r = answer(stub, stub.post(multipart([first, encode(second)]), content_type()))
    assert r.code == 202
    failed = parse_json(r.body).failed
    assert [(f.sop_instance_uid, f.failure_reason) for f in failed] == [
        (second.SOPInstanceUID, 0xA700)
    ]
    stored = sorted(p.name for p in Path(stub.directory).rglob("*.dcm"))
    assert len(stored) == 1
    assert leftover_parts(stub.directory) == []  # spare temp files stay empty


def test_full_disk_when_creating_the_temp_file(
    make_stub: Callable[..., Stub], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When even the empty temp file cannot be created (no space, no inodes), the part
    fails with A700 under its UIDs and the request is answered."""
    from stowpair.receiver.storage import UidLayoutStorage

    def no_space(self: UidLayoutStorage, ctx: object) -> TempPart:
        raise OSError(errno.ENOSPC, "No space left on device")

    stub = make_stub()
    monkeypatch.setattr(UidLayoutStorage, "open_part", no_space)
    ds = make_dataset()
    r = answer(stub, stub.post(multipart([encode(ds)]), content_type()))
    assert r.code == 409
    failed = parse_json(r.body).failed
    assert [(f.sop_instance_uid, f.failure_reason) for f in failed] == [(ds.SOPInstanceUID, 0xA700)]
