"""Fixtures for archive tests: a real SQLiteIndex on the running reactor, test files."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import pytest_twisted
from pydicom.data import get_testdata_file, get_testdata_files
from twisted.internet import reactor

from stowpair.archive.index import SQLiteIndex
from stowpair.archive.model import InstanceIndex
from stowpair.archive.pg_index import PostgresIndex
from stowpair.db.postgres import PostgresDatabase
from tests.postgres import scratch_database

#: One bundled pydicom file per transfer syntax it ships (pydicom 3.0.x).
FILES_BY_SYNTAX = {
    "1.2.840.10008.1.2": "MR_small_implicit.dcm",
    "1.2.840.10008.1.2.1": "CT_small.dcm",
    "1.2.840.10008.1.2.1.99": "image_dfl.dcm",
    "1.2.840.10008.1.2.2": "MR_small_bigendian.dcm",
    "1.2.840.10008.1.2.4.50": "SC_rgb_jpeg_dcmtk.dcm",
    "1.2.840.10008.1.2.4.51": "JPGExtended.dcm",
    "1.2.840.10008.1.2.4.70": "SC_rgb_jpeg_gdcm.dcm",
    "1.2.840.10008.1.2.4.80": "MR_small_jpeg_ls_lossless.dcm",
    "1.2.840.10008.1.2.4.90": "MR_small_jp2klossless.dcm",
    "1.2.840.10008.1.2.4.91": "JPEG2000.dcm",
    "1.2.840.10008.1.2.5": "MR_small_RLE.dcm",
}


def bundled(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(path)


def all_bundled_files() -> list[Path]:
    return [Path(p) for p in get_testdata_files() if os.path.isfile(p)]


@pytest.fixture(autouse=True)
def _quiet_pydicom() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"pydicom\.")
        yield


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SQLiteIndex]:
    idx = SQLiteIndex(tmp_path / "index.sqlite", reactor)
    pytest_twisted.blockon(idx.opened)
    yield idx
    pytest_twisted.blockon(idx.close())


@pytest.fixture(params=["sqlite", "postgresql"])
def any_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InstanceIndex]:
    with ExitStack() as stack:
        made: InstanceIndex
        if request.param == "sqlite":
            made = SQLiteIndex(tmp_path / "index.sqlite", reactor)
        else:
            database = PostgresDatabase(stack.enter_context(scratch_database()), reactor)
            stack.callback(lambda: pytest_twisted.blockon(database.close()))
            pytest_twisted.blockon(database.open())
            made = PostgresIndex(database, tmp_path)
        pytest_twisted.blockon(made.opened)
        yield made
        pytest_twisted.blockon(made.close())
