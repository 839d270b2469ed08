"""One export attempt's requests: batching, decompression, POST, 413 halving, results."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger, LogLevel

from stowpair.archive.model import InstanceRecord
from stowpair.auth.tokens import TokenError
from stowpair.dicom.transfer_syntax import select
from stowpair.exporter.body import BodyPart
from stowpair.exporter.client import HTTPAnswer, StowClient
from stowpair.exporter.errors import describe, unreachable
from stowpair.exporter.outcome import InstanceOutcome, InstanceStatus
from stowpair.exporter.reconcile import Verdict, acknowledges_nothing, reconcile, retry_after
from stowpair.logs import register_events

if TYPE_CHECKING:
    from stowpair.exporter.auth import RequestAuth
    from stowpair.exporter.stow import Transcoder

register_events(
    {
        "exporter.request": (
            "exporter", "webapp", "url", "instances", "bytes", "http_status", "completed",
            "warning", "failed", "bytes_by_outcome", "reason", "elapsed",
        ),
        "exporter.request.split": ("webapp", "url", "instances", "bytes"),
        "exporter.destination.unreachable": ("webapp", "url", "reason"),
        "exporter.request.unauthorized": ("webapp", "url", "instances", "retry"),
        "exporter.peer.transfer_syntax_ignored": ("webapp", "url"),
        "exporter.bug": (),
        "exporter.instance.failed": (
            "webapp", "study_uid", "series_uid", "sop_uid", "reason", "reason_code",
            "http_status", "retryable",
        ),
    }
)  # fmt: skip

ACCEPT = b"application/dicom+json"  # as dcm4chee; XML answers are parsed too


@dataclass(frozen=True)
class Item:
    """One instance to send, with the transfer syntax chosen for it (docs/transcoding.md)."""

    record: InstanceRecord
    target_ts: str | None
    transcode: bool
    selection_error: str | None = None


def make_batches(items: Sequence[Item], max_count: int, max_bytes: int | None) -> list[list[Item]]:
    """Consecutive groups of at most ``max_count`` instances and ``max_bytes`` bytes (an
    instance larger than ``max_bytes`` travels alone). Sizes are the stored sizes."""
    batches: list[list[Item]] = []
    current: list[Item] = []
    size = 0
    for item in items:
        too_many = len(current) >= max(1, max_count)
        too_big = max_bytes is not None and size + item.record.size > max_bytes
        if current and (too_many or too_big):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item.record.size
    if current:
        batches.append(current)
    return batches


@dataclass
class _Prepared:
    item: Item
    part: BodyPart
    temp: Path | None = None


class Attempt:
    """Sends batches for one export attempt and keeps one result per instance."""

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        client: StowClient,
        auth: RequestAuth,
        transcoder: Transcoder | None,
        work_dir: Path | None,
        exporter_id: str = "",
    ) -> None:
        self._reactor = reactor
        #: The ExporterID the attempt works for (``stowrs:{WebApp}`` when synchronous).
        self.exporter_id = exporter_id
        self.client = client
        self._headers = {b"Accept": ACCEPT}
        self._auth = auth
        self._transcoder = transcoder
        self._work_dir = work_dir
        self._results: dict[str, InstanceOutcome] = {}
        self.retry_after: float | None = None
        #: Set when the destination could not be reached (refused, no route, unknown
        #: host, connect timeout): the rest of this attempt fails at once with it, and
        #: the retry schedule tries again later.
        self.unreachable: Verdict | None = None

    def item(self, record: InstanceRecord) -> Item:
        accepted = self.client.webapp.properties.transfer_syntax
        selection = select(record.transfer_syntax_uid, accepted)
        if selection.target is None:
            return Item(record, None, False, selection.reason)
        return Item(record, selection.target, selection.transcode)

    def results(self) -> list[InstanceOutcome]:
        return list(self._results.values())

    def results_of(self, batch: Sequence[Item]) -> list[InstanceOutcome]:
        """The results of a batch's instances (every instance sent has one)."""
        found = (self._results.get(item.record.sop_instance_uid) for item in batch)
        return [r for r in found if r is not None]

    def record(
        self,
        record: InstanceRecord,
        status: InstanceStatus,
        reason: str = "",
        *,
        verdict: Verdict | None = None,
        http_status: int | None = None,
        bytes_sent: int = 0,
        elapsed: float = 0.0,
    ) -> None:
        outcome = InstanceOutcome(
            study_uid=record.study_uid,
            series_uid=record.series_uid,
            sop_instance_uid=record.sop_instance_uid,
            sop_class_uid=record.sop_class_uid,
            status=verdict.status if verdict else status,
            reason=verdict.reason if verdict else reason,
            reason_code=verdict.reason_code if verdict else None,
            http_status=http_status,
            bytes_sent=bytes_sent,
            elapsed=elapsed,
            retryable=verdict.retryable if verdict else False,
        )
        self._results[record.sop_instance_uid] = outcome
        if outcome.status is InstanceStatus.FAILED:
            self.log.debug(
                "Instance {sop_uid} not exported to {webapp}: {reason}",
                event="exporter.instance.failed",
                webapp=self.client.webapp.name,
                study_uid=record.study_uid,
                series_uid=record.series_uid,
                sop_uid=record.sop_instance_uid,
                reason=outcome.reason,
                reason_code=outcome.reason_code,
                http_status=http_status,
                retryable=outcome.retryable,
            )

    def fail_unsendable(self, item: Item, reason: str, reason_code: int | None = None) -> None:
        verdict = Verdict(InstanceStatus.FAILED, reason, reason_code)
        self.record(item.record, InstanceStatus.FAILED, verdict=verdict)

    async def send(self, batch: list[Item]) -> None:
        """Prepare (decompress), POST, record; never raises. Once the destination was
        found unreachable in this attempt, the batch fails at once with that reason."""
        if self.unreachable is not None:
            for item in batch:
                self.record(item.record, InstanceStatus.FAILED, verdict=self.unreachable)
            return
        prepared: list[_Prepared] = []
        try:
            prepared = await self._prepare(batch)
            if prepared:
                await self._post(prepared)
        except Exception as e:  # a bug must not lose instances: they fail, loudly
            self.log.failure("unexpected error while exporting", event="exporter.bug")
            for item in batch:
                if item.record.sop_instance_uid not in self._results:
                    self.record(item.record, InstanceStatus.FAILED, f"internal error: {e!r}")
        finally:
            for p in prepared:
                if p.temp is not None:
                    p.temp.unlink(missing_ok=True)

    async def _prepare(self, batch: list[Item]) -> list[_Prepared]:
        prepared = []
        for item in batch:
            record, target = item.record, item.target_ts or item.record.transfer_syntax_uid
            if not item.transcode:
                try:
                    size = os.stat(record.path).st_size
                except OSError as e:
                    self.record(record, InstanceStatus.MISSING, f"cannot read file: {e}")
                    continue
                prepared.append(_Prepared(item, BodyPart(record.path, target, size)))
                continue
            one = await self._decompress(item, target)
            if one is not None:
                prepared.append(one)
        return prepared

    async def _decompress(self, item: Item, target: str) -> _Prepared | None:
        record = item.record
        if self._transcoder is None:
            self.fail_unsendable(item, f"needs decompression to {target}, which is not available")
            return None
        try:
            if self._work_dir is not None:
                # A fresh archive has no <storage>/.export yet; without it every
                # decompressing export failed with "unexpected error".
                self._work_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="stowpair-", suffix=".dcm", dir=self._work_dir)
        except OSError as e:
            self.fail_unsendable(
                item, f"cannot create a temporary file in {self._work_dir}: {e.strerror}"
            )
            return None
        os.close(fd)
        temp = Path(name)
        try:
            size = await self._transcoder.transcode(record.path, target, temp)
        except Exception as e:
            temp.unlink(missing_ok=True)
            self.fail_unsendable(item, f"cannot convert {record.path} to {target}: {e}")
            return None
        return _Prepared(item, BodyPart(temp, target, size), temp)

    async def _post(self, prepared: list[_Prepared], retried: bool = False) -> None:
        """One request; on a 401 to an access token, one retry with a fresh token."""
        started = self._reactor.seconds()
        if self.unreachable is not None:  # e.g. the second half of a split batch
            self._finish(prepared, {}, self.unreachable, None, started)
            return
        url = self.client.webapp.studies_url
        with_parameter = self.client.transfer_syntax_parameter
        headers = dict(self._headers)
        try:
            auth = await self._auth.header()
        except TokenError as e:  # the queue retries: the token endpoint may recover
            self._finish(
                prepared, {}, Verdict(InstanceStatus.FAILED, str(e), retryable=True), None, started
            )
            return
        if auth is not None:
            headers[b"Authorization"] = auth
        try:
            answer, _ = await self.client.post([p.part for p in prepared], headers)
        except Exception as e:
            reason, retryable = describe(e, url)
            verdict = Verdict(InstanceStatus.FAILED, reason, retryable=retryable)
            if unreachable(e) and self.unreachable is None:
                self._give_up(verdict, url)
            self._finish(prepared, {}, verdict, None, started)
            return
        if answer.status == 413:
            await self._too_large(prepared, answer, started)
            return
        if answer.status == 401 and not retried and self._auth.refused(auth):
            self.log.info(
                "{url} answered 401 to {instances} instances: retrying once with a new token",
                event="exporter.request.unauthorized",
                webapp=self.client.webapp.name,
                url=url,
                instances=len(prepared),
                retry=True,
            )
            await self._post(prepared, retried=True)
            return
        if with_parameter and acknowledges_nothing(answer):
            if self.client.transfer_syntax_parameter:
                self._drop_transfer_syntax_parameter(url)
            await self._post(prepared, retried)
            return
        self._finish(prepared, self._verdicts(prepared, answer), None, answer.status, started)

    def _give_up(self, verdict: Verdict, url: str) -> None:
        self.unreachable = verdict
        self.log.warn(
            "{url} cannot be reached ({reason}): the rest of this attempt fails at once;"
            " the retry schedule tries again",
            event="exporter.destination.unreachable",
            webapp=self.client.webapp.name,
            url=url,
            reason=verdict.reason,
        )

    async def _too_large(
        self, prepared: list[_Prepared], answer: HTTPAnswer, started: float
    ) -> None:
        """413: keep what the answer lists as stored, halve the rest and send both
        halves; a single instance answered 413 fails."""
        prepared = self._keep_stored(prepared, answer, started)
        if len(prepared) <= 1:
            if prepared:
                verdicts = self._verdicts(prepared, answer)
                self._finish(prepared, verdicts, None, answer.status, started)
            return
        self.log.info(
            "{url} answered 413 to {instances} instances ({bytes} bytes): halving",
            event="exporter.request.split",
            webapp=self.client.webapp.name,
            url=self.client.webapp.studies_url,
            instances=len(prepared),
            bytes=sum(p.part.size for p in prepared),
        )
        half = len(prepared) // 2
        await self._post(prepared[:half])
        await self._post(prepared[half:])

    def _keep_stored(
        self, prepared: list[_Prepared], answer: HTTPAnswer, started: float
    ) -> list[_Prepared]:
        """A 413 may still list instances the server stored before the body passed its
        limit (stowrsd and stowpair's ingest do): those are done; the rest is returned to
        be sent again in smaller requests."""
        verdicts = reconcile([p.item.record.sop_instance_uid for p in prepared], answer)
        delivered = (InstanceStatus.COMPLETED, InstanceStatus.WARNING)
        stored = {uid: v for uid, v in verdicts.items() if v.status in delivered}
        if stored:
            done = [p for p in prepared if p.item.record.sop_instance_uid in stored]
            self._finish(done, stored, None, answer.status, started)
        return [p for p in prepared if p.item.record.sop_instance_uid not in stored]

    def _drop_transfer_syntax_parameter(self, url: str) -> None:
        """Fall back to bare ``application/dicom`` parts for this web app (sticky)."""
        self.client.transfer_syntax_parameter = False
        self.log.warn(
            "{url} acknowledged none of the parts: it ignores parts whose Content-Type "
            "carries transfer-syntax (Orthanc DICOMweb 1.7 does); re-sending without it",
            event="exporter.peer.transfer_syntax_ignored",
            webapp=self.client.webapp.name,
            url=url,
        )

    def _verdicts(self, prepared: list[_Prepared], answer: HTTPAnswer) -> dict[str, Verdict]:
        if answer.status == 413:
            text = (
                f"the server refuses a request holding only this instance "
                f"({prepared[0].part.size} bytes) as too large (HTTP 413)"
            )
            return {prepared[0].item.record.sop_instance_uid: Verdict(InstanceStatus.FAILED, text)}
        wait = retry_after(answer, self._reactor.seconds())
        if wait is not None:
            self.retry_after = max(wait, self.retry_after or 0.0)
        return reconcile([p.item.record.sop_instance_uid for p in prepared], answer)

    def _finish(
        self,
        prepared: list[_Prepared],
        verdicts: dict[str, Verdict],
        default: Verdict | None,
        http_status: int | None,
        started: float,
    ) -> None:
        elapsed = self._reactor.seconds() - started
        for p in prepared:
            verdict = verdicts.get(p.item.record.sop_instance_uid, default)
            assert verdict is not None
            self.record(
                p.item.record,
                verdict.status,
                verdict=verdict,
                http_status=http_status,
                bytes_sent=p.part.size,
                elapsed=elapsed,
            )
        chosen = [verdicts.get(p.item.record.sop_instance_uid, default) for p in prepared]
        statuses = [v.status for v in chosen if v is not None]
        any_failed = InstanceStatus.FAILED in statuses  # one WARN line per failed request
        bytes_by_outcome = {"completed": 0, "warning": 0, "failed": 0}
        for p, v in zip(prepared, chosen, strict=True):
            if v is not None and str(v.status).lower() in bytes_by_outcome:
                bytes_by_outcome[str(v.status).lower()] += p.part.size
        self.log.emit(
            LogLevel.warn if any_failed else LogLevel.debug,
            "POST {url}: {instances} instances, {bytes} bytes, HTTP {http_status}, "
            "completed {completed}, warning {warning}, failed {failed} in {elapsed:.3f}s",
            event="exporter.request",
            exporter=self.exporter_id,
            webapp=self.client.webapp.name,
            url=self.client.webapp.studies_url,
            instances=len(prepared),
            bytes=sum(p.part.size for p in prepared),
            http_status=http_status,
            completed=statuses.count(InstanceStatus.COMPLETED),
            warning=statuses.count(InstanceStatus.WARNING),
            failed=statuses.count(InstanceStatus.FAILED),
            bytes_by_outcome=bytes_by_outcome,
            reason=default.reason if default else "",
            elapsed=elapsed,
        )
