"""The physical lines of a text, for the CSV and NDJSON readers, within the line and row limits.

A line ends at LF, CRLF or CR (the text is opened with ``newline=""``). Iterating
gives each line with its line break; a line past the line limit is skipped to its
end and raises ``LineTooLong`` instead, and a line that takes the record being
read past the row limit raises ``RowTooLarge``. Either way the next ``next()``
goes on with the following line, so ``csv.reader`` (which starts a fresh record
after an exception) can read on from there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from ingestro.formats.decoding import ESCAPED

#: How much of a too-long line is read at a time while skipping it.
_SKIP_CHARS = 64 * 1024


class LineTooLong(Exception):
    """A physical line longer than the limit; it has been skipped."""


class RowTooLarge(Exception):
    """The record being read grew past the row limit with ``line``, the line just read."""

    def __init__(self, line: str) -> None:
        super().__init__("the record is too large")
        self.line = line


def _content_length(line: str) -> int:
    """The length of ``line`` without its line break."""
    if line.endswith("\r\n"):
        return len(line) - 2
    return len(line) - 1 if line.endswith(("\n", "\r")) else len(line)


class PhysicalLines:
    """Iterates the physical lines of ``text``.

    ``chars`` counts the characters of the lines returned; a reader sets
    ``record_start = chars`` when a record ends, which is what the row limit
    measures from.
    """

    __slots__ = ("_line_chars", "_read_size", "_readline", "_row_chars", "_text", "chars", "record_start")

    def __init__(self, text: TextIO, line_chars: int, row_chars: int) -> None:
        self._text = text
        self._line_chars = line_chars
        self._row_chars = row_chars
        # Two more than the limit: a line at the limit with its CRLF is read whole, never split in two.
        self._read_size = line_chars + 2
        self._readline: Callable[[int], str] = text.readline
        self.chars = 0
        self.record_start = 0

    def __iter__(self) -> PhysicalLines:
        return self

    def __next__(self) -> str:
        line = self._readline(self._read_size)
        if not line:
            raise StopIteration
        size = len(line)
        if size > self._line_chars and _content_length(line) > self._line_chars:
            self._skip_rest(line)
            raise LineTooLong
        self.chars += size
        if self.chars - self.record_start > self._row_chars:
            raise RowTooLarge(line)
        return line

    def _skip_rest(self, piece: str) -> None:
        """Read on to the end of the physical line that ``piece`` began."""
        self._skipped(piece)
        while piece and not piece.endswith(("\n", "\r")):
            piece = self._text.readline(_SKIP_CHARS)
            self._skipped(piece)
        if piece.endswith("\r"):
            # readline may have stopped between the CR and the LF of a CRLF.
            self._readline = self._after_cr

    def _after_cr(self, size: int) -> str:
        self._readline = self._text.readline
        line = self._readline(size)
        if line == "\n":  # right after a CR, an LF is the rest of a CRLF, never a line of its own
            self._skipped(line)
            line = self._readline(size)
        return line

    def _skipped(self, text: str) -> None:
        """``text`` was read and not returned (a subclass counts its bytes)."""


class TrackedLines(PhysicalLines):
    """PhysicalLines of a text opened escaping, which also locate undecodable bytes.

    ``undecodable_at`` is the byte offset of the first undecodable byte read since
    a reader last set it to None (so: in the record being read), or None.
    """

    __slots__ = ("_byte_length", "position", "undecodable_at")

    def __init__(
        self, text: TextIO, line_chars: int, row_chars: int, byte_length: Callable[[str], int], start: int
    ) -> None:
        super().__init__(text, line_chars, row_chars)
        self._byte_length = byte_length
        #: Byte offset of the next line in the file.
        self.position = start
        self.undecodable_at: int | None = None

    def __next__(self) -> str:
        try:
            line = super().__next__()
        except RowTooLarge as too_large:
            self._skipped(too_large.line)
            raise
        start = self.position
        self.position += self._byte_length(line)
        if self.undecodable_at is None and (bad := ESCAPED.search(line)) is not None:
            self.undecodable_at = start + self._byte_length(line[: bad.start()])
        return line

    def _skipped(self, text: str) -> None:
        self.position += self._byte_length(text)
