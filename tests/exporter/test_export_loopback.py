"""StowExporter against a STOW-RS sink on a real loopback socket."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from stowpair.exporter.outcome import (
    Cancellation,
    ExportError,
    InstanceOutcome,
    InstanceStatus,
    TaskStatus,
)
from tests.exporter.conftest import Run, Sink
from tests.exporter.support import make_study, webapp


@pytest_twisted.ensureDeferred
async def test_defaults_one_instance_per_request_content_length(
    tmp_path: Path, sink: Sink, run_export: Run
) -> None:
    """When no property is set, each instance goes alone with a Content-Length, and all complete."""
    records = make_study(tmp_path / "s", 3)
    outcome = await run_export(records, [webapp(sink.url)])
    assert outcome.status is TaskStatus.COMPLETED
    assert outcome.message == f"Export Study[uid={records[0].study_uid}] to sink - completed:3"
    assert sink.resource.log.parts == [1, 1, 1]
    for headers, size in zip(sink.resource.log.headers, sink.resource.log.sizes, strict=True):
        assert headers["content-length"] == [str(size)]
        assert "transfer-encoding" not in headers
        assert headers["accept"] == ["application/dicom+json"]
    assert {r.sop_instance_uid: r.path.read_bytes() for r in records} == sink.resource.log.stored
    assert all(i.http_status == 200 and i.bytes_sent > 0 for i in outcome.instances)


@pytest_twisted.ensureDeferred
async def test_chunked_sends_transfer_encoding(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When chunked=true, requests use Transfer-Encoding: chunked and still complete."""
    records = make_study(tmp_path / "s", 2)
    outcome = await run_export(records, [webapp(sink.url, chunked=True)])
    assert outcome.completed == 2
    assert all(h["transfer-encoding"] == ["chunked"] for h in sink.resource.log.headers)


@pytest.mark.parametrize(
    ("count", "bytes_limit", "expected"),
    [(3, None, [3, 3, 1]), (10, None, [7]), (10, 2, [1] * 7)],
    ids=["count-3", "count-10", "bytes-limit"],
)
@pytest_twisted.ensureDeferred
async def test_batching(
    tmp_path: Path,
    sink: Sink,
    run_export: Run,
    count: int,
    bytes_limit: int | None,
    expected: list[int],
) -> None:
    """When max-instances-per-request / max-request-bytes are set, requests group accordingly."""
    records = make_study(tmp_path / "s", 7)
    wa = webapp(sink.url, max_instances_per_request=count, max_request_bytes=bytes_limit)
    outcome = await run_export(records, [wa])
    assert outcome.completed == 7
    assert sink.resource.log.parts == expected


@pytest_twisted.ensureDeferred
async def test_413_halves_batch(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When the server answers 413 to big batches, the batch is halved until accepted."""
    records = make_study(tmp_path / "s", 8)
    sink.behave(max_parts=2)
    outcome = await run_export(records, [webapp(sink.url, max_instances_per_request=8)])
    assert outcome.completed == 8
    assert sink.resource.log.parts == [8, 4, 2, 2, 4, 2, 2]


@pytest_twisted.ensureDeferred
async def test_concurrency_bounds_in_flight(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When concurrency=3, at most 3 requests are in flight and more than 1 are."""
    records = make_study(tmp_path / "s", 9)
    sink.behave(delay=0.05)
    outcome = await run_export(records, [webapp(sink.url, concurrency=3)])
    assert outcome.completed == 9
    assert sink.resource.log.max_in_flight == 3


@pytest_twisted.ensureDeferred
async def test_failures_warnings_missing(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When one fails, one is unlisted and one file is missing, the outcome is FAILED."""
    records = make_study(tmp_path / "s", 4)
    records[3].path.unlink()
    sink.behave(fail={records[0].sop_instance_uid: 0xA700}, forget={records[1].sop_instance_uid})
    outcome = await run_export(records, [webapp(sink.url, max_instances_per_request=4)])
    assert outcome.status is TaskStatus.FAILED
    assert outcome.message.endswith("completed:1, failed:3, missing:1")
    by_uid = {i.sop_instance_uid: i for i in outcome.instances}
    assert by_uid[records[0].sop_instance_uid].reason_code == 0xA700
    assert by_uid[records[0].sop_instance_uid].retryable
    assert "not acknowledged" in by_uid[records[1].sop_instance_uid].reason
    assert by_uid[records[3].sop_instance_uid].status is InstanceStatus.MISSING


@pytest_twisted.ensureDeferred
async def test_warning_reason_gives_completed(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When every instance is stored with WarningReason, the task is COMPLETED with warning:N."""
    records = make_study(tmp_path / "s", 2)
    sink.behave(warning=0xB000)
    outcome = await run_export(records, [webapp(sink.url)])
    assert outcome.status is TaskStatus.COMPLETED
    assert outcome.message.endswith("completed:0, warning:2")


@pytest_twisted.ensureDeferred
async def test_503_retry_after(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When the server answers 503 with Retry-After, instances fail retryable with retry_after."""
    records = make_study(tmp_path / "s", 2)
    sink.behave(status=503, headers={"Retry-After": "30"}, body=b"maintenance")
    outcome = await run_export(records, [webapp(sink.url)])
    assert outcome.status is TaskStatus.WARNING and outcome.failed == 2
    assert outcome.retry_after == 30.0
    assert all(i.retryable and i.http_status == 503 for i in outcome.instances)


@pytest_twisted.ensureDeferred
async def test_already_done_not_resent(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When a retry names instances already done, only the others are sent; counts include them."""
    records = make_study(tmp_path / "s", 3)
    done = frozenset({records[0].sop_instance_uid})
    outcome = await run_export(records, [webapp(sink.url)], already_done=done)
    assert outcome.completed == 3 and len(outcome.instances) == 2
    assert records[0].sop_instance_uid not in sink.resource.log.stored


@pytest_twisted.ensureDeferred
async def test_refused_for_good_not_resent(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When a retry names an instance an earlier attempt saw refused for good (0xC000), it
    is not sent; it counts as failed again with the earlier reason, and the outcome is
    WARNING with completed including the delivered ones."""
    records = make_study(tmp_path / "s", 3)
    refused = {records[1].sop_instance_uid: ("cannot understand (0xC000) (HTTP 409)", 0xC000)}
    done = frozenset({records[0].sop_instance_uid})
    outcome = await run_export(records, [webapp(sink.url)], already_done=done, refused=refused)
    assert set(sink.resource.log.stored) == {records[2].sop_instance_uid}
    assert (outcome.status, outcome.completed, outcome.failed) == (TaskStatus.WARNING, 2, 1)
    [failed] = [i for i in outcome.instances if i.status is InstanceStatus.FAILED]
    assert failed.reason_code == 0xC000 and "not sent again" in failed.reason
    assert "cannot understand (0xC000)" in failed.reason and not failed.retryable


@pytest_twisted.ensureDeferred
async def test_cancel_stops_new_requests(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When cancelled before sending, nothing is sent and the outcome is CANCELED."""
    records = make_study(tmp_path / "s", 3)
    cancellation = Cancellation()
    cancellation.cancel()
    outcome = await run_export(records, [webapp(sink.url)], cancellation=cancellation)
    assert outcome.status is TaskStatus.CANCELED
    assert "canceled - remaining:3, completed:0" in outcome.message
    assert sink.resource.log.parts == []


@pytest_twisted.ensureDeferred
async def test_series_and_unknown_study(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When the study is unknown, the outcome is WARNING "Could not find Study[uid=…]"."""
    records = make_study(tmp_path / "s", 1)
    outcome = await run_export(records, [webapp(sink.url)], study="9.9.9")
    assert (outcome.status, outcome.message) == (
        TaskStatus.WARNING,
        "Could not find Study[uid=9.9.9]",
    )


@pytest_twisted.ensureDeferred
async def test_unknown_webapp_and_service_class(
    tmp_path: Path, sink: Sink, run_export: Run
) -> None:
    """When the web app is unknown the export fails with ExportError (task FAILED, retried);
    when it lacks STOW_RS the export ends WARNING with dcm4chee's message, nothing sent."""
    records = make_study(tmp_path / "s", 1)
    with pytest.raises(ExportError, match="Unknown WebApplication: nope"):
        await run_export(records, [webapp(sink.url)], name="nope")
    qido = webapp(sink.url)
    qido = type(qido)(name="sink", url=sink.url, service_classes=("QIDO_RS",))
    outcome = await run_export(records, [qido])
    assert outcome.status is TaskStatus.WARNING
    assert outcome.message.startswith(
        "Destination webapp sink is not configured for STOW_RS web service"
    )
    assert sink.resource.log.parts == []


@pytest_twisted.ensureDeferred
async def test_transfer_syntax_not_allowed(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When transfer-syntax lists only another compressed syntax, the instance fails unsent."""
    records = make_study(tmp_path / "s", 1)
    outcome = await run_export(
        records, [webapp(sink.url, transfer_syntax=("1.2.840.10008.1.2.4.70",))]
    )
    assert outcome.failed == 1 and sink.resource.log.parts == []
    assert "not in the accepted list" in outcome.instances[0].reason


@pytest_twisted.ensureDeferred
async def test_connection_refused(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When nothing listens, instances fail retryable with "connection refused"."""
    records = make_study(tmp_path / "s", 1)
    port = sink.port.getHost().port
    await sink.port.stopListening()
    outcome = await run_export(records, [webapp(f"http://127.0.0.1:{port}/x")])
    assert outcome.failed == 1 and outcome.instances[0].retryable
    assert "connection refused" in outcome.instances[0].reason


@pytest_twisted.ensureDeferred
async def test_response_timeout_is_idle_time(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When the server stays silent past response-timeout, the instance fails with "no progress"."""
    records = make_study(tmp_path / "s", 1)
    sink.behave(delay=2.0)
    outcome = await run_export(records, [webapp(sink.url, response_timeout=0.3)])
    assert outcome.failed == 1
    assert "no progress for 0.3 s" in outcome.instances[0].reason
    assert outcome.instances[0].elapsed < 1.5


@pytest_twisted.ensureDeferred
async def test_slow_answer_within_timeout(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When the server answers before response-timeout, the instance completes."""
    records = make_study(tmp_path / "s", 1)
    sink.behave(delay=0.2)
    outcome = await run_export(
        records, [webapp(sink.url, response_timeout=1.0, connect_timeout=1.0)]
    )
    assert outcome.completed == 1


@pytest_twisted.ensureDeferred
async def test_peer_ignoring_ts_parameter(tmp_path: Path, sink: Sink, run_export: Run) -> None:
    """When the peer acknowledges nothing for parts with transfer-syntax, they are re-sent bare."""
    records = make_study(tmp_path / "s", 3)
    sink.behave(ignore_ts_param=True)
    outcome = await run_export(records, [webapp(sink.url, concurrency=2)])
    assert outcome.completed == 3
    assert sink.resource.log.part_headers[-1] == b"Content-Type: application/dicom"


@pytest_twisted.ensureDeferred
async def test_results_reported_per_request_hold_the_slot(
    tmp_path: Path, sink: Sink, run_export: Run
) -> None:
    """When results are recorded as requests are answered (durable progress), each request's
    outcomes are reported once, and no further request is sent on that slot until the
    record is done: at most concurrency × batch instances are ever unrecorded."""
    records = make_study(tmp_path / "s", 10)
    reported: list[list[str]] = []
    pending: list[Deferred[None]] = []
    recorded: list[int] = []
    unrecorded: list[int] = []

    def on_results(outcomes: Sequence[InstanceOutcome]) -> Deferred[None]:
        reported.append([o.sop_instance_uid for o in outcomes])
        assert all(o.status is InstanceStatus.COMPLETED for o in outcomes)
        unrecorded.append(sum(sink.resource.log.parts) - sum(recorded))
        d: Deferred[None] = Deferred()
        d.addCallback(lambda _: recorded.append(len(outcomes)))
        pending.append(d)
        reactor.callLater(0.05, d.callback, None)  # a slow commit
        return d

    wa = webapp(sink.url, concurrency=2, max_instances_per_request=3)
    outcome = await run_export(records, [wa], on_results=on_results)
    assert outcome.completed == 10
    assert sorted(len(r) for r in reported) == [1, 3, 3, 3]
    assert sorted(u for r in reported for u in r) == sorted(r.sop_instance_uid for r in records)
    assert all(d.called for d in pending)
    assert max(unrecorded) <= 2 * 3  # concurrency × max-instances-per-request
