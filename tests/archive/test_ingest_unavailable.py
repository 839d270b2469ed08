"""The ingest while the archive index cannot be reached: 503 with Retry-After, and the
same request sent again later stores, indexes and announces what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail

from stowpair.archive.demo import generate_demo_study
from stowpair.archive.store import read_header
from stowpair.db.errors import DatabaseUnavailable
from tests.archive.test_ingest import BOUNDARY, Archive, body, ingest  # noqa: F401  (fixture)

DOWN = DatabaseUnavailable("postgresql://root@127.0.0.1:5432/stowpair: connection refused")


async def post_raw(url: str, data: bytes) -> tuple[int, dict[str, Any], bytes]:
    response = await treq.post(
        url,
        data=data,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
            "Accept": "application/dicom+json",
        },
        reactor=reactor,
    )
    headers = {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()}
    return response.code, headers, await response.content()


@pytest_twisted.ensureDeferred
async def test_unreachable_index_answers_503_then_the_resend_completes(
    ingest: Archive,  # noqa: F811
    tmp_path: Path,
) -> None:
    """When the index's database is down, the ingest answers 503 with Retry-After and a
    reason; once it is back, the same request is acknowledged, every instance is indexed
    and the export rules hear each instance once."""
    files = generate_demo_study(tmp_path / "src", 3, 8, seed=21)
    study = read_header(files[0]).study_uid
    data = body([(f.read_bytes(), None) for f in files])
    url = f"{ingest.base}/STOWPAIR/rs/studies/{study}"
    real_add = ingest.index.add
    ingest.index.add = lambda records: fail(DOWN)  # type: ignore[method-assign]
    code, headers, text = await post_raw(url, data)
    assert code == 503
    assert headers["retry-after"] == "10"
    assert b"cannot store instances now" in text and b"connection refused" in text
    assert ingest.heard == [] and await ingest.index.count() == 0
    ingest.index.add = real_add  # type: ignore[method-assign]
    code, _, _ = await post_raw(url, data)
    assert code == 200
    assert await ingest.index.count() == 3
    assert sorted(r.sop_instance_uid for r, _ in ingest.heard) == sorted(f.stem for f in files)


@pytest_twisted.ensureDeferred
async def test_rules_that_cannot_store_their_task_answer_503(
    ingest: Archive,  # noqa: F811
    tmp_path: Path,
) -> None:
    """When the export rules cannot write their task (the database went away after the
    instance was indexed), the request is refused with 503 and the resend fires them."""
    [f] = generate_demo_study(tmp_path / "src", 1, 8, seed=22)
    down = [True]

    def rules(record: Any, attributes: Any) -> Deferred[None] | None:
        if down[0]:
            return fail(DOWN)
        return None

    ingest.backend.add_listener(rules)
    url = f"{ingest.base}/STOWPAIR/rs/studies"
    code, headers, _ = await post_raw(url, body([(f.read_bytes(), None)]))
    assert (code, headers["retry-after"]) == (503, "10")
    down[0] = False
    code, _, _ = await post_raw(url, body([(f.read_bytes(), None)]))
    assert code == 200
    assert len(ingest.heard) == 2  # the first listener heard both requests
    code, _, _ = await post_raw(url, body([(f.read_bytes(), None)]))
    assert code == 200 and len(ingest.heard) == 2  # a third, identical one: nothing new
