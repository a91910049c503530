"""Where a stored file may be cut into byte ranges that parsers read at once, each giving exactly the rows,
lines and errors that one reader of the whole file gives for its part.

``plan_ranges`` scans the bytes once, at memory speed (bytes methods and one regular expression per
chunk; a Python loop over the lines only where quotes are), and cuts only where a cut is provably a
record boundary for the readers of ``ingestro.formats``; where it cannot prove it, it does not cut
(None: one parser reads the whole file). It cuts:

- only an uncompressed UTF-8 (or ASCII) file, CSV or NDJSON, whose bytes all decode and hold no NUL,
  without an error threshold (``max_errors``, ``max_error_rate``: where a parse stops depends on every
  row before); gzip and JSON arrays stay on one parser;
- after an LF (so CRLF too; a file whose lines end with CR alone is not cut);
- NDJSON at any LF: a row is a physical line;
- CSV only after a single-line header, at an LF outside quotes, and only if quote parity tells where
  the csv module's records end: every line holding a quote is well-formed (each quote opens a field,
  closes one before a delimiter or the line's end, or is doubled inside one; a quote inside an
  unquoted field, ``5" disk``, is literal to the csv module and would break parity), no physical
  line is past ``line_chars`` and no multi-line record past ``row_chars`` (the readers restart a
  record after either limit, which would break parity too). Only lines with quotes cost a Python
  step and a regular-expression match.

Line numbers are absolute: a range knows the physical lines (LF, CRLF, CR) before its start, counted
while planning, and shifts its rows' lines by them.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ingestro.domain.events import UploadOptions
from ingestro.domain.limits import Limits
from ingestro.formats.csv_rows import sniff_delimiter
from ingestro.formats.decoding import BrokenStream, Source, detect, open_stored

#: Batches one range may number: range ``i`` numbers its batches from ``i * RANGE_SEQ_BOUND``.
RANGE_SEQ_BOUND = 1 << 20
#: Ranges of one file, so that every batch number stays a PostgreSQL ``integer``.
MAX_RANGES = (2**31 - 1) // RANGE_SEQ_BOUND
_CHUNK = 8 * 1024 * 1024


@attrs.frozen
class ByteRange:
    index: int
    start: int
    end: int
    #: Add to a line number read from the range (after the header, for CSV) to get the file's.
    line_shift: int


@attrs.frozen
class RangePlan:
    #: A CSV file's header bytes (0..header_end) are read before each range; 0 for NDJSON.
    header_end: int
    ranges: list[ByteRange]


def physical_lines(data: bytes) -> int:
    """The line breaks in ``data`` (LF, CRLF and CR each end a line), cut after an LF or at the end."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def plan_ranges(
    path: Source, file_format: str, options: UploadOptions, limits: Limits, range_bytes: int, batch_size: int
) -> RangePlan | None:
    """The ranges of about ``range_bytes`` bytes the file at ``path`` may be parsed in, or None: one parser.

    Blocking (it reads the whole file): run it in a thread. ``StorageFailed`` when the bytes cannot be read.
    """
    if range_bytes <= 0 or file_format not in ("csv", "ndjson") or options.compression is not None:
        return None
    if options.max_errors is not None or options.max_error_rate is not None:
        return None
    with open_stored(path) as stored:
        return _Scan(file_format, options, limits, range_bytes, batch_size).run(stored)


class _Unsafe(Exception):
    """The file cannot be cut (see the module's docstring)."""


class _Scan:
    def __init__(
        self, file_format: str, options: UploadOptions, limits: Limits, range_bytes: int, batch_size: int
    ) -> None:
        self.csv = file_format == "csv"
        self.options = options
        self.limits = limits
        self.step = range_bytes
        self.batch_size = batch_size
        # CSV: what a line holding quotes must match, starting outside or inside a quoted field.
        self.lines_outside: re.Pattern[bytes] | None = None
        self.lines_inside: re.Pattern[bytes] | None = None
        #: A line that is whole records (no quoted field open at its end).
        self.closed_lines: re.Pattern[bytes] | None = None
        self.header_end = 0
        self.header_lines = 0
        self.base = 0  # offset of the chunk being scanned
        self.lines = 0  # physical lines before ``base``
        self.quoted = False  # CSV: ``base`` is inside a quoted field
        self.record_start = 0  # CSV: where the record open across lines began
        self.cuts: list[tuple[int, int]] = []  # (offset, physical lines before it)
        self.target = 0

    def run(self, stored: io.BufferedReader[Any]) -> RangePlan | None:
        try:
            return self._run(stored)
        except _Unsafe:
            return None

    def _run(self, stored: io.BufferedReader[Any]) -> RangePlan | None:
        carry = b""
        first = True
        while True:
            chunk = stored.read(_CHUNK)
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            if chunk and cut == 0:
                if len(data) > self.limits.line_chars + 2:
                    raise _Unsafe  # a line too long, or none ends with LF
                carry = data
                continue
            complete, carry = data[:cut], data[cut:]
            if first:
                first = False
                self._start(complete)
            self._scan(complete)
            self.base += len(complete)
            self.lines += physical_lines(complete)
            if not chunk:
                break
        return self._plan(self.base)

    def _start(self, head: bytes) -> None:
        """Check the file's encoding, and find a CSV file's header and delimiter."""
        try:
            decoding = detect(head[:4], self.options.encoding)
        except BrokenStream:
            raise _Unsafe from None
        if codecs.lookup(decoding.bare_codec).name != "utf-8":
            raise _Unsafe
        if not self.csv:
            self.target = self.step
            return
        end = head.find(b"\n") + 1
        header = head[decoding.bom : end]
        text = header.decode("utf-8", "replace")
        if not end or not text.strip() or header.count(b'"') % 2 or physical_lines(header) != 1:
            raise _Unsafe  # a blank first line, a header over several lines, or lines ending with CR
        delimiter = self.options.delimiter or sniff_delimiter(text)
        if len(delimiter.encode()) != 1 or delimiter in '"\r\n':
            raise _Unsafe
        self.lines_outside, self.lines_inside, self.closed_lines = _line_grammar(delimiter.encode())
        self.header_end, self.header_lines = end, 1
        self.target = end + self.step

    def _scan(self, data: bytes) -> None:
        if b"\x00" in data or not (data.isascii() or _decodes(data)):
            raise _Unsafe
        lines = data.split(b"\n")
        if max(map(len, lines)) > self.limits.line_chars:
            raise _Unsafe
        quotes = self.csv and b'"' in data
        if quotes and not self.quoted:
            # The common case, checked in one match over the lines holding quotes: all are whole records.
            assert self.closed_lines is not None
            if all(map(self.closed_lines.fullmatch, [line for line in lines if b'"' in line])):
                quotes = False
        if not quotes and not self.quoted:  # every LF ends a record
            while self.target < self.base + len(data):
                at = data.find(b"\n", max(self.target - self.base, 0))
                if at < 0:
                    break
                self._cut(data, at + 1)
            return
        position = 0
        row_chars = self.limits.row_chars
        for line in lines:
            end = position + len(line) + 1
            if quotes and b'"' in line:
                self._check(line)
            if quotes and line.count(b'"') % 2:
                self.quoted = not self.quoted
                if self.quoted:
                    self.record_start = self.base + position
                elif self.base + end - self.record_start > row_chars:
                    raise _Unsafe
            elif not self.quoted and self.base + end >= self.target and end <= len(data):
                self._cut(data, end)
            position = end
        if self.quoted and self.base + len(data) - self.record_start > row_chars:
            raise _Unsafe

    def _check(self, line: bytes) -> None:
        grammar = self.lines_inside if self.quoted else self.lines_outside
        assert grammar is not None
        if grammar.fullmatch(line) is None:
            raise _Unsafe

    def _cut(self, data: bytes, end: int) -> None:
        offset = self.base + end
        self.cuts.append((offset, self.lines + physical_lines(data[:end])))
        self.target = offset + self.step

    def _plan(self, size: int) -> RangePlan | None:
        cuts = [(offset, lines) for offset, lines in self.cuts if offset < size]
        if size < 2 * self.step or not cuts or len(cuts) + 1 > MAX_RANGES:
            return None
        starts = [(0, 0), *((offset, lines - self.header_lines) for offset, lines in cuts)]
        ends = [offset for offset, _ in cuts] + [size]
        ranges = [
            ByteRange(index, start, end, shift)
            for index, ((start, shift), end) in enumerate(zip(starts, ends, strict=True))
        ]
        # Every row takes two bytes at least (a character and a line break).
        if any((r.end - r.start) // (2 * self.batch_size) + 2 > RANGE_SEQ_BOUND for r in ranges):
            return None
        return RangePlan(self.header_end, ranges)


def _line_grammar(delimiter: bytes) -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes]]:
    """Well-formed CSV lines (LF cut off) that hold quotes, starting outside and inside a quoted field;
    and a line that is whole records.

    In such a line every quote opens a field, closes one before a delimiter or the line's end, or is
    doubled inside one: the csv module reads it so, and its quote count's parity says whether a
    quoted field is still open at its end.
    """
    # Written unrolled ("[^"]*(?:""[^"]*)*"), so that the regex engine loops over character classes.
    d = re.escape(delimiter)
    unquoted = b'[^"' + d + b"]*"
    opened = b'"[^"]*(?:""[^"]*)*'
    field = b"(?:" + opened + b'"|' + unquoted + b")"
    outside = b"(?:" + field + d + b")*(?:" + field + b"\\r?|" + opened + b")"
    inside = b'[^"]*(?:""[^"]*)*(?:"(?:' + d + field + b")*(?:" + d + opened + b"|\\r?))?"
    whole_field = b'(?:"[^"\\n]*(?:""[^"\\n]*)*"|[^"\\n' + d + b"]*)"
    whole_line = b"(?:" + whole_field + d + b")*" + whole_field + b"\\r?"
    return re.compile(outside), re.compile(inside), re.compile(whole_line)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Spliced(io.RawIOBase):
    """Some byte spans of a stored file, read one after the other as one stream."""

    def __init__(self, raw: io.BufferedReader[Any], spans: list[tuple[int, int]]) -> None:
        self._raw = raw
        self._spans = [span for span in spans if span[1] > span[0]]
        self._position = -1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._spans:
            start, end = self._spans[0]
            if self._position < start:
                self._raw.seek(start)
                self._position = start
            if self._position >= end:
                self._spans.pop(0)
                self._position = -1
                continue
            view = memoryview(buffer)[: end - self._position]
            count = self._raw.readinto(view)
            if not count:
                raise OSError(f"the stored file ended at byte {self._position}, before byte {end}")
            self._position += count
            return count
        return 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def range_source(path: Source, header_end: int, start: int, end: int) -> Callable[[], io.BufferedReader[Any]]:
    """The stored file's bytes 0..``header_end`` then ``start``..``end`` (the first range, from 0: its own header),
    as a source the readers open."""
    spans = [(start, end)] if start == 0 else [(0, header_end), (start, end)]

    def opened() -> io.BufferedReader[Any]:
        raw = open(path, "rb") if isinstance(path, Path) else path()  # noqa: SIM115 - closed by the reader
        return io.BufferedReader(_Spliced(raw, spans))

    return opened
