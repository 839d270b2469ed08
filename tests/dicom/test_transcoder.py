"""Transcoder: the bounded pool off the reactor, with threads and with processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import cast

import pydicom
import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads

from stowpair.dicom import transfer_syntax as ts
from stowpair.dicom.transcode import TranscodeError, Transcoder

from .helpers import bundled

MODES = [False, True]
MODE_IDS = ["threads", "processes"]


def _reactor() -> IReactorThreads:
    from twisted.internet import reactor

    return cast(IReactorThreads, reactor)


@pytest.mark.parametrize("use_processes", MODES, ids=MODE_IDS)
@pytest_twisted.ensureDeferred
async def test_jobs_complete(use_processes: bool, tmp_path: Path) -> None:
    """When several jobs are queued on two workers, each fires with its output size."""
    transcoder = Transcoder(_reactor(), max_workers=2, use_processes=use_processes)
    transcoder.start()
    names = ["SC_rgb_jpeg_gdcm.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"] * 2
    try:
        sizes = await defer.gatherResults(
            [
                transcoder.transcode(bundled(n), ts.EXPLICIT_VR_LE, tmp_path / f"{i}.dcm")
                for i, n in enumerate(names)
            ]
        )
    finally:
        await transcoder.stop()
    for i, size in enumerate(sizes):
        out = tmp_path / f"{i}.dcm"
        assert size == out.stat().st_size
        assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == ts.EXPLICIT_VR_LE


@pytest.mark.parametrize("use_processes", MODES, ids=MODE_IDS)
@pytest_twisted.ensureDeferred
async def test_failure_is_transcode_error(use_processes: bool, tmp_path: Path) -> None:
    """When a job fails in a worker, the Deferred fails with TranscodeError naming the file."""
    transcoder = Transcoder(_reactor(), max_workers=1, use_processes=use_processes)
    transcoder.start()
    try:
        with pytest.raises(TranscodeError, match=r"JPEG-lossy\.dcm"):
            await transcoder.transcode(
                bundled("JPEG-lossy.dcm"), ts.EXPLICIT_VR_LE, tmp_path / "out.dcm"
            )
    finally:
        await transcoder.stop()


@pytest_twisted.ensureDeferred
async def test_not_started_fails(tmp_path: Path) -> None:
    """When the transcoder is not started (or stopped), transcode fails with a clear error."""
    transcoder = Transcoder(_reactor(), use_processes=False)
    with pytest.raises(TranscodeError, match="not started"):
        await transcoder.transcode(bundled("CT_small.dcm"), ts.EXPLICIT_VR_LE, tmp_path / "o.dcm")
    transcoder.start()
    await transcoder.stop()
    with pytest.raises(TranscodeError, match="not started"):
        await transcoder.transcode(bundled("CT_small.dcm"), ts.EXPLICIT_VR_LE, tmp_path / "o.dcm")


@pytest_twisted.ensureDeferred
async def test_service_lifecycle(tmp_path: Path) -> None:
    """When used as a twisted Service, startService starts and stopService drains the pool."""
    transcoder = Transcoder(_reactor(), use_processes=False)
    transcoder.startService()
    assert transcoder.running
    size = await transcoder.transcode(
        bundled("CT_small.dcm"), ts.IMPLICIT_VR_LE, tmp_path / "o.dcm"
    )
    assert size > 0
    await transcoder.stopService()
    assert not transcoder.running


def test_bad_worker_count() -> None:
    """When max_workers is below one, the constructor refuses."""
    with pytest.raises(ValueError, match="max_workers"):
        Transcoder(_reactor(), max_workers=0)


@pytest_twisted.ensureDeferred
async def test_dead_worker_fails_job_then_pool_recovers(tmp_path: Path) -> None:
    """When a worker process is killed mid-job, that job fails clearly and later jobs succeed."""
    transcoder = Transcoder(_reactor(), max_workers=1, use_processes=True)
    transcoder.start()
    src = bundled("MR_small_RLE.dcm")
    try:
        await transcoder.transcode(src, ts.EXPLICIT_VR_LE, tmp_path / "warm.dcm")
        executor = transcoder._executor
        assert executor is not None
        pids = list(executor._processes)  # the worker we started, by id
        job = transcoder.transcode(
            bundled("examples_ybr_color.dcm"), ts.EXPLICIT_VR_LE, tmp_path / "a.dcm"
        )
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(TranscodeError, match="worker failed"):
            await job
        size = await transcoder.transcode(src, ts.EXPLICIT_VR_LE, tmp_path / "b.dcm")
        assert size == (tmp_path / "b.dcm").stat().st_size
    finally:
        await transcoder.stop()
