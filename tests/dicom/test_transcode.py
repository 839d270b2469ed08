"""transcode_file: every bundled transfer syntax to native, Big Endian, Deflate, FMI, errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_decoder

from stowpair.dicom import transcode as tc
from stowpair.dicom import transfer_syntax as ts
from stowpair.dicom.transcode import TranscodeError, transcode_file

from .helpers import BROKEN, bundled, bundled_images, pixels

# pydicom warns about the oddities its test files carry on purpose (bad UIDs, padding).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

IMAGES = bundled_images()
NATIVE_TARGETS = [ts.EXPLICIT_VR_LE, ts.IMPLICIT_VR_LE]


def _reference(src: Path, source_ts: str) -> np.ndarray:
    """The source's pixels decoded by pydicom with the same plugin and colour policy."""
    if ts.is_native(source_ts):
        return pixels(src)
    return pixels(src, as_rgb=source_ts in tc._AS_RGB, plugin=tc.decoding_plugin(source_ts))


@pytest.mark.parametrize("target", NATIVE_TARGETS, ids=ts.keyword)
@pytest.mark.parametrize(
    ("source_ts", "src"),
    [i for i in IMAGES if i[1].name not in BROKEN],
    ids=[f"{ts.keyword(t)}-{p.name}" for t, p in IMAGES if p.name not in BROKEN],
)
def test_bundled_file_decodes_to_identical_pixels(
    source_ts: str, src: Path, target: str, tmp_path: Path
) -> None:
    """When a bundled file is transcoded to a native syntax, its pixels are unchanged."""
    dest = tmp_path / "out.dcm"
    size = transcode_file(src, target, dest)
    assert size == dest.stat().st_size
    out = pydicom.dcmread(dest)
    assert out.file_meta.TransferSyntaxUID == target
    assert out.SOPInstanceUID == pydicom.dcmread(src, stop_before_pixels=True).SOPInstanceUID
    np.testing.assert_array_equal(pixels(dest), _reference(src, source_ts))


@pytest.mark.parametrize(("name", "hint"), sorted(BROKEN.items()), ids=sorted(BROKEN))
def test_broken_bundled_file_fails_cleanly(name: str, hint: str, tmp_path: Path) -> None:
    """When a broken file cannot be transcoded, TranscodeError names it and the cause."""
    with pytest.raises(TranscodeError) as caught:
        transcode_file(bundled(name), ts.EXPLICIT_VR_LE, tmp_path / "out.dcm")
    message = str(caught.value)
    assert name in message and hint in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no temp file or partial output left behind


BIG_ENDIAN_TWINS = [
    ("MR_small_bigendian.dcm", "MR_small.dcm"),
    ("MR_small_expb.dcm", "MR_small.dcm"),
    ("rtdose_expb.dcm", "rtdose.dcm"),  # 32-bit, multi-frame
    ("rtdose_expb_1frame.dcm", "rtdose_1frame.dcm"),
    ("SC_rgb_small_odd_big_endian.dcm", "SC_rgb_small_odd.dcm"),  # 8-bit OW, odd length
]


@pytest.mark.parametrize("target", NATIVE_TARGETS, ids=ts.keyword)
@pytest.mark.parametrize(("big", "little"), BIG_ENDIAN_TWINS, ids=[b for b, _ in BIG_ENDIAN_TWINS])
def test_big_endian_matches_little_endian_twin(
    big: str, little: str, target: str, tmp_path: Path
) -> None:
    """When a Big Endian file is converted, its pixels equal the bundled little-endian twin's."""
    dest = tmp_path / "out.dcm"
    transcode_file(bundled(big), target, dest)
    np.testing.assert_array_equal(pixels(dest), pixels(bundled(little)))


@pytest.mark.parametrize("name", [p.name for t, p in IMAGES if t == ts.EXPLICIT_VR_BE])
def test_big_endian_values_survive(name: str, tmp_path: Path) -> None:
    """When a Big Endian file is converted, every non-pixel value reads back the same."""
    src = bundled(name)
    dest = tmp_path / "out.dcm"
    transcode_file(src, ts.EXPLICIT_VR_LE, dest)
    before, after = pydicom.dcmread(src), pydicom.dcmread(dest)
    assert _values(before) == _values(after)


def _values(ds: pydicom.Dataset) -> dict[int, object]:
    out: dict[int, object] = {}
    for elem in ds:
        if elem.tag == 0x7FE00010 or elem.tag.element == 0:
            continue  # pixels are compared apart; retired group lengths are not written
        if elem.VR == "SQ":
            out[elem.tag] = [_values(item) for item in elem.value]
        elif elem.VR in ("OW", "OF", "OD", "OL", "OV"):
            out[elem.tag] = ("binary", len(elem.value))
        else:
            out[elem.tag] = elem.value
    return out


@pytest.mark.parametrize("target", NATIVE_TARGETS, ids=ts.keyword)
def test_deflated_input_converts(target: str, tmp_path: Path) -> None:
    """When a Deflated file is converted, pixels and values are those of the inflated source."""
    src = bundled("image_dfl.dcm")
    dest = tmp_path / "out.dcm"
    transcode_file(src, target, dest)
    np.testing.assert_array_equal(pixels(dest), pixels(src))
    assert _values(pydicom.dcmread(dest)) == _values(pydicom.dcmread(src))


@pytest.mark.parametrize(
    "via", [ts.EXPLICIT_VR_BE, ts.DEFLATED_EXPLICIT_VR_LE, ts.IMPLICIT_VR_LE], ids=ts.keyword
)
@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_small_odd.dcm", "rtdose.dcm"])
def test_native_round_trip(name: str, via: str, tmp_path: Path) -> None:
    """When a file goes to another native syntax and back, pixels and values are unchanged."""
    src = bundled(name)
    transcode_file(src, via, tmp_path / "via.dcm")
    assert pydicom.dcmread(tmp_path / "via.dcm").file_meta.TransferSyntaxUID == via
    transcode_file(tmp_path / "via.dcm", ts.EXPLICIT_VR_LE, tmp_path / "back.dcm")
    np.testing.assert_array_equal(pixels(tmp_path / "back.dcm"), pixels(src))
    assert _values(pydicom.dcmread(tmp_path / "back.dcm")) == _values(pydicom.dcmread(src))


def test_file_meta_regenerated(tmp_path: Path) -> None:
    """When a file is transcoded, the FMI is rebuilt for the output syntax and names stowpair."""
    src = bundled("SC_rgb_jpeg_gdcm.dcm")
    dest = tmp_path / "out.dcm"
    transcode_file(src, ts.EXPLICIT_VR_LE, dest)
    raw = dest.read_bytes()
    assert raw[:128] == b"\0" * 128 and raw[128:132] == b"DICM"
    old, new = pydicom.dcmread(src).file_meta, pydicom.dcmread(dest).file_meta
    assert new.TransferSyntaxUID == ts.EXPLICIT_VR_LE
    assert new.MediaStorageSOPClassUID == old.MediaStorageSOPClassUID
    assert new.MediaStorageSOPInstanceUID == old.MediaStorageSOPInstanceUID
    assert new.ImplementationClassUID == tc.IMPLEMENTATION_CLASS_UID
    assert new.ImplementationVersionName == tc.IMPLEMENTATION_VERSION_NAME
    assert new.FileMetaInformationVersion == b"\x00\x01"
    assert "SourceApplicationEntityTitle" not in new


def test_compressed_target_refused(tmp_path: Path) -> None:
    """When asked to write a compressed syntax, transcode_file refuses: it never compresses."""
    with pytest.raises(TranscodeError, match="never compresses"):
        transcode_file(bundled("CT_small.dcm"), ts.JPEG_LOSSLESS_SV1, tmp_path / "out.dcm")


def test_missing_file(tmp_path: Path) -> None:
    """When the source is missing, TranscodeError names the path."""
    src = tmp_path / "nope.dcm"
    with pytest.raises(TranscodeError, match=r"cannot read .*nope\.dcm as DICOM"):
        transcode_file(src, ts.EXPLICIT_VR_LE, tmp_path / "out.dcm")


def test_not_dicom(tmp_path: Path) -> None:
    """When the source is not DICOM, TranscodeError says so."""
    src = tmp_path / "junk.dcm"
    src.write_bytes(b"hello" * 100)
    with pytest.raises(TranscodeError, match=r"junk\.dcm as DICOM"):
        transcode_file(src, ts.EXPLICIT_VR_LE, tmp_path / "out.dcm")


def test_video_is_never_decompressed(tmp_path: Path) -> None:
    """When the source is MPEG-4 video, TranscodeError says video is never decompressed."""
    src = tmp_path / "video.dcm"
    ds = pydicom.dcmread(bundled("SC_rgb_jpeg_gdcm.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    ds.save_as(src)
    with pytest.raises(TranscodeError, match=r"video\.dcm: video streams are never decompressed"):
        transcode_file(src, ts.EXPLICIT_VR_LE, tmp_path / "out.dcm")
    assert not tc.can_decompress("1.2.840.10008.1.2.4.102")


DECODABLE = [
    ts.JPEG_BASELINE_8BIT,
    ts.JPEG_EXTENDED_12BIT,
    ts.JPEG_LOSSLESS,
    ts.JPEG_LOSSLESS_SV1,
    ts.JPEG_LS_LOSSLESS,
    ts.JPEG_LS_NEAR_LOSSLESS,
    ts.JPEG_2000_LOSSLESS,
    ts.JPEG_2000,
    ts.HTJ2K_LOSSLESS,
    ts.HTJ2K_LOSSLESS_RPCL,
    ts.HTJ2K,
    ts.RLE_LOSSLESS,
]


@pytest.mark.parametrize("uid", DECODABLE, ids=ts.keyword)
def test_decoding_plugin_is_pylibjpeg(uid: str) -> None:
    """When a compressed syntax is decoded, the pylibjpeg plugin is chosen, never gdcm or pillow."""
    assert tc.decoding_plugin(uid) == "pylibjpeg"
    assert tc.can_decompress(uid)


def test_gdcm_never_selected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """When a 'gdcm' plugin is first in pydicom's list, transcode_file still never calls it."""
    calls: list[str] = []

    def fake_gdcm(src: bytes, runner: object) -> bytes:
        calls.append("gdcm")
        raise RuntimeError("gdcm must not be used")

    decoder = get_decoder(ts.JPEG_LOSSLESS_SV1)
    monkeypatch.setattr(decoder, "_available", {"gdcm": fake_gdcm, **decoder._available})
    src = bundled("SC_rgb_jpeg_gdcm.dcm")
    assert pydicom.dcmread(src).pixel_array.size  # control: pydicom's own choice does reach "gdcm"
    assert calls == ["gdcm"]
    calls.clear()
    transcode_file(src, ts.EXPLICIT_VR_LE, tmp_path / "out.dcm")
    assert calls == []


def test_dest_replaced_atomically(tmp_path: Path) -> None:
    """When dest exists, it is replaced whole and no temp file is left next to it."""
    dest = tmp_path / "sub" / "out.dcm"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    transcode_file(bundled("MR_small_RLE.dcm"), ts.EXPLICIT_VR_LE, dest)
    assert [p.name for p in dest.parent.iterdir()] == ["out.dcm"]
    assert pydicom.dcmread(dest).file_meta.TransferSyntaxUID == ts.EXPLICIT_VR_LE


def test_output_mode_follows_umask(tmp_path: Path) -> None:
    """When the output is written, its mode is 0o666 minus the umask, as for any new file."""
    old = os.umask(0o022)
    try:
        transcode_file(bundled("CT_small.dcm"), ts.EXPLICIT_VR_LE, tmp_path / "out.dcm")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.dcm").stat().st_mode) == 0o644
