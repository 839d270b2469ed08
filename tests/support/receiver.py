"""Test helpers for the receiver: instances with fresh UIDs and multipart bodies."""

from __future__ import annotations

import io
from collections.abc import Iterable

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid


def make_dataset(
    study: str | None = None,
    series: str | None = None,
    sop: str | None = None,
    source: str = "CT_small.dcm",
) -> Dataset:
    """A copy of a pydicom test file with fresh (or the given) UIDs."""
    path = get_testdata_file(source)
    assert path is not None, source
    ds = pydicom.dcmread(path)
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.SOPInstanceUID = sop or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def encode(ds: Dataset) -> bytes:
    """The PS3.10 file bytes of ``ds``."""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def multipart(
    parts: Iterable[bytes], boundary: str = "XBOUNDARYX", part_type: str = "application/dicom"
) -> bytes:
    """A multipart/related body with one part per item (RFC 2046)."""
    out = b""
    for part in parts:
        out += f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def content_type(boundary: str = "XBOUNDARYX") -> str:
    return f'multipart/related; type="application/dicom"; boundary={boundary}'
