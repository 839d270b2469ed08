"""Incremental multipart/related parser (RFC 2046 §5.1, RFC 2387) and Content-Type parsing.

Feed the body as it arrives with :meth:`MultipartParser.feed`; each call returns the
events it completed (:class:`PartStarted`, :class:`PartData`, :class:`PartEnded`).
Call :meth:`MultipartParser.close` when the body ends: it raises
:class:`MultipartError` when the close delimiter never came. Memory use is bounded by
the chunk size plus the header limits; part data is never accumulated.

Syntax followed (RFC 2046 §5.1.1): the body is an ignored preamble, then
``--boundary`` + transport padding (spaces, tabs) + CRLF, part headers, an empty line,
part data, then ``CRLF--boundary`` again; ``--boundary--`` closes the body and whatever
follows (the epilogue) is ignored. The first delimiter may start the body.

Module name note: never call a top-level module ``multipart`` (it shadows treq's
dependency); this one is ``mpr_parser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

CRLF = b"\r\n"
#: RFC 2046 §5.1.1 allows 1 to 70 characters, but Orthanc's DICOMweb client sends
#: 73 ("<uuid>-<uuid>"); accept longer ones, still bounded.
MAX_BOUNDARY = 200
_LWSP = b" \t"


class MultipartError(ValueError):
    """The body is not a well-formed multipart entity.

    ``offset`` is the byte offset in the body where the problem was found and
    ``part`` the 1-based number of the part being read (0 before the first part).
    """

    def __init__(self, message: str, offset: int, part: int) -> None:
        where = f"at byte {offset}" + (f", part {part}" if part else "")
        super().__init__(f"{message} ({where})")
        self.reason = message
        self.offset = offset
        self.part = part


class ContentTypeError(ValueError):
    """A Content-Type value that cannot be parsed."""


@dataclass(frozen=True)
class PartHeaders:
    """A part's headers in arrival order; names compare case-insensitively."""

    items: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, or ``default``."""
        wanted = name.lower()
        for key, value in self.items:
            if key.lower() == wanted:
                return value
        return default

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)


@dataclass(frozen=True)
class PartStarted:
    """Part ``number`` (1-based) begins; its headers are complete."""

    number: int
    headers: PartHeaders


@dataclass(frozen=True)
class PartData:
    """Some bytes of part ``number``'s content, in order."""

    number: int
    data: bytes


@dataclass(frozen=True)
class PartEnded:
    """Part ``number`` is complete: its closing delimiter was seen."""

    number: int
    size: int


Event = PartStarted | PartData | PartEnded


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile bodies from using unbounded memory."""

    max_header_line: int = 8192
    max_headers: int = 64
    max_parts: int = 100_000


@dataclass
class _State:
    # where we are: "preamble", "delimiter", "headers", "body", "epilogue", "failed"
    phase: str = "preamble"
    part: int = 0
    part_size: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)


class MultipartParser:
    """Incremental parser for one multipart body with the given ``boundary``.

    Errors raise :class:`MultipartError` (never another exception type, whatever
    the bytes); after an error the parser refuses further input.
    """

    def __init__(self, boundary: str | bytes, limits: Limits | None = None) -> None:
        raw = boundary.encode("latin-1") if isinstance(boundary, str) else boundary
        if not 1 <= len(raw) <= MAX_BOUNDARY:
            raise MultipartError(
                f"boundary must be 1 to {MAX_BOUNDARY} characters, got {len(raw)}", 0, 0
            )
        self.limits = limits or Limits()
        self._dash_boundary = b"--" + raw
        self._delimiter = CRLF + self._dash_boundary
        # The first delimiter may open the body without a CRLF: pretend one came.
        self._buf = bytearray(CRLF)
        self._offset = -len(CRLF)  # body offset of _buf[0]
        self._s = _State()
        self._events: list[Event] = []
        self._closed = False
        self._ended = 0

    @property
    def parts_completed(self) -> int:
        """How many parts ended with a delimiter so far."""
        return self._ended

    @property
    def complete(self) -> bool:
        """True once the close delimiter has been seen."""
        return self._s.phase == "epilogue"

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events it completed, in order."""
        if self._s.phase == "failed" or self._closed:
            raise MultipartError("parser already stopped", self._offset, self._s.part)
        if self._s.phase == "epilogue":
            return []  # RFC 2046: the epilogue is ignored
        self._buf += data
        try:
            self._run()
        except MultipartError:
            self._s.phase = "failed"
            raise
        events, self._events = self._events, []
        return events

    def close(self) -> list[Event]:
        """Signal the end of the body; raise if the close delimiter was missing."""
        if self._closed:
            return []
        self._closed = True
        s = self._s
        end = self._offset + len(self._buf)
        if s.phase == "epilogue":
            return []
        if s.phase == "preamble":
            raise MultipartError("body ended before the first boundary delimiter", max(end, 0), 0)
        if s.phase in ("body", "headers", "delimiter"):
            what = {"headers": "in its headers", "delimiter": "after a delimiter"}.get(
                s.phase, "before its closing delimiter"
            )
            raise MultipartError(
                f"body truncated: it ended {what} (missing close delimiter"
                f" '--{self._dash_boundary[2:].decode('latin-1')}--')",
                end,
                s.part,
            )
        raise MultipartError("parser already stopped", end, s.part)

    # -- the state machine ---------------------------------------------------

    def _run(self) -> None:
        while True:
            phase = self._s.phase
            if phase == "preamble":
                progressed = self._scan_preamble()
            elif phase == "delimiter":
                progressed = self._after_delimiter()
            elif phase == "headers":
                progressed = self._read_header_line()
            elif phase == "body":
                progressed = self._scan_body()
            else:  # epilogue: drop everything
                self._consume(len(self._buf))
                return
            if not progressed:
                return

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._offset += n

    def _fail(self, message: str, at: int = 0) -> MultipartError:
        return MultipartError(message, max(self._offset + at, 0), self._s.part)

    def _scan_preamble(self) -> bool:
        idx = self._buf.find(self._delimiter)
        if idx < 0:
            # keep a tail that could be the start of a split delimiter
            keep = len(self._delimiter) - 1
            if len(self._buf) > keep:
                self._consume(len(self._buf) - keep)
            return False
        verdict = self._delimiter_verdict(idx + len(self._delimiter))
        if verdict is None:
            self._consume(idx)
            return False
        if verdict == "data":  # e.g. "--boundaryX": not a delimiter, still preamble
            self._consume(idx + 1)
            return True
        self._consume(idx + len(self._delimiter))
        self._s.phase = "delimiter"
        return True

    def _delimiter_verdict(self, pos: int) -> str | None:
        """What follows a delimiter candidate ending at ``pos``.

        ``"close"`` for ``--``, ``"open"`` for padding + CRLF, ``"data"`` when the
        candidate is only a prefix of other text, ``None`` when more bytes are needed.
        """
        buf = self._buf
        if len(buf) < pos + 2:
            if len(buf) > pos and buf[pos : pos + 1] not in (b"-", b"\r", b" ", b"\t"):
                return "data"
            return None
        if buf[pos : pos + 2] == b"--":
            return "close"
        i = pos
        while i < len(buf) and buf[i] in _LWSP:
            i += 1
            if i - pos > self.limits.max_header_line:
                raise self._fail("transport padding after a boundary is too long", pos)
        if len(buf) < i + 2:
            return None
        return "open" if buf[i : i + 2] == CRLF else "data"

    def _after_delimiter(self) -> bool:
        verdict = self._delimiter_verdict(0)
        if verdict is None:
            return False
        if verdict == "close":
            self._consume(2)
            self._s.phase = "epilogue"
            return True
        if verdict == "data":
            raise self._fail("a boundary delimiter must be followed by CRLF or '--'")
        self._consume(self._buf.find(CRLF) + 2)
        s = self._s
        if s.part >= self.limits.max_parts:
            raise self._fail(f"more than {self.limits.max_parts} parts")
        s.part += 1
        s.part_size = 0
        s.headers = []
        s.phase = "headers"
        return True

    def _read_header_line(self) -> bool:
        s = self._s
        end = self._buf.find(CRLF)
        if end < 0:
            if len(self._buf) > self.limits.max_header_line:
                raise self._fail(
                    f"a part header line is longer than {self.limits.max_header_line} bytes"
                )
            return False
        if end > self.limits.max_header_line:
            raise self._fail(
                f"a part header line is longer than {self.limits.max_header_line} bytes"
            )
        line = bytes(self._buf[:end]).decode("latin-1")
        if line == "":
            self._consume(end + 2)
            s.phase = "body"
            self._events.append(PartStarted(s.part, PartHeaders(tuple(s.headers))))
            return True
        if line[0] in " \t":  # obsolete line folding (RFC 5322 §2.2.3)
            if not s.headers:
                raise self._fail("a part header starts with whitespace")
            name, value = s.headers[-1]
            s.headers[-1] = (name, f"{value} {line.strip()}")
        else:
            name, sep, value = line.partition(":")
            name = name.strip()
            if not sep or not name or any(c in name for c in " \t"):
                raise self._fail(f"malformed part header line {line[:60]!r}")
            if len(s.headers) >= self.limits.max_headers:
                raise self._fail(f"more than {self.limits.max_headers} headers in one part")
            s.headers.append((name, value.strip()))
        self._consume(end + 2)
        return True

    def _scan_body(self) -> bool:
        s = self._s
        start = 0
        while True:
            idx = self._buf.find(self._delimiter, start)
            if idx < 0:
                keep = len(self._delimiter) - 1
                self._emit(max(len(self._buf) - keep, 0))
                return False
            verdict = self._delimiter_verdict(idx + len(self._delimiter))
            if verdict is None:
                self._emit(idx)
                return False
            if verdict == "data":
                start = idx + 1
                continue
            self._emit(idx)
            self._consume(len(self._delimiter))
            self._events.append(PartEnded(s.part, s.part_size))
            self._ended += 1
            s.phase = "delimiter"
            return True

    def _emit(self, n: int) -> None:
        if n <= 0:
            return
        data = bytes(self._buf[:n])
        self._consume(n)
        self._s.part_size += n
        self._events.append(PartData(self._s.part, data))


# -- Content-Type ---------------------------------------------------------------

_TSPECIALS = set('()<>@,;:\\"/[]?=')


def _is_token(text: str) -> bool:
    return bool(text) and all(33 <= ord(c) <= 126 and c not in _TSPECIALS for c in text)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into ``(media_type, params)`` (RFC 9110 §8.3.1).

    The media type and parameter names are lowercased; values are unquoted. Spaces
    around ``;`` and ``=``, empty parameters and a trailing ``;`` are tolerated
    (RESTEasy writes ``multipart/related;type="application/dicom";start="<x>"``).
    A ``/`` in an unquoted value is accepted because clients send ``type=application/dicom``.
    Raises :class:`ContentTypeError` naming the problem.
    """
    media, params_text = _split_media(value)
    params: dict[str, str] = {}
    rest = params_text
    while rest:
        rest = rest.lstrip(" \t;")
        if not rest:
            break
        name, sep, rest = rest.partition("=")
        name = name.strip().lower()
        if not sep or not _is_token(name):
            raise ContentTypeError(f"malformed parameter {name!r} in Content-Type {value!r}")
        rest = rest.lstrip(" \t")
        if rest.startswith('"'):
            param_value, rest = _quoted(rest, value)
            rest = rest.lstrip(" \t")
            if rest and not rest.startswith(";"):
                raise ContentTypeError(f"expected ';' after parameter {name!r} in {value!r}")
        else:
            param_value, _, rest = rest.partition(";")
            param_value = param_value.strip()
            if not param_value or any(c in param_value for c in ' \t"'):
                raise ContentTypeError(f"malformed value of {name!r} in Content-Type {value!r}")
        params.setdefault(name, param_value)
    return media, params


def _split_media(value: str) -> tuple[str, str]:
    media, _, params_text = value.partition(";")
    media = media.strip().lower()
    kind, slash, sub = media.partition("/")
    if not slash or not _is_token(kind) or not _is_token(sub):
        raise ContentTypeError(f"Content-Type {value!r} is not type/subtype")
    return media, params_text


def _quoted(text: str, whole: str) -> tuple[str, str]:
    """Parse a quoted-string at the start of ``text``; return (value, rest)."""
    out: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), text[i + 1 :]
        out.append(c)
        i += 1
    raise ContentTypeError(f"unterminated quoted string in Content-Type {whole!r}")
