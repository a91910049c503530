"""From a stored file to text: gzip inflation within limits, byte-order marks, declared encodings.

A text is opened either strictly (an undecodable byte raises ``UnicodeDecodeError``:
the fast path) or *escaping*: each undecodable byte then becomes one lone surrogate
U+DC00 + byte (``ESCAPED``), which no decoder ever produces from valid input, so a
reader can tell where the bad bytes were and how many bytes the text before them took.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import attrs

from ingestro.domain.limits import Limits

#: A stored file: its path, or a function that opens it
#: (``ingestro.storage.interface.Storage.open``: a file or an S3 object).
Source = Path | Callable[[], io.BufferedReader]

#: Matches one escaped (undecodable) byte in a text opened escaping.
ESCAPED = re.compile("[\udc00-\udcff]")
_ESCAPE = "ingestro-escape"
#: Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)
#: Below this many inflated bytes the ratio is not judged: tiny files compress oddly.
_RATIO_FLOOR = 1024 * 1024


def _escape(error: UnicodeError) -> tuple[str | bytes, int]:
    """Undecodable bytes <-> lone surrogates, both ways, for every byte value (unlike surrogateescape)."""
    if isinstance(error, UnicodeDecodeError):
        return "".join(chr(0xDC00 + byte) for byte in error.object[error.start : error.end]), error.end
    if isinstance(error, UnicodeEncodeError):
        chars = error.object[error.start : error.end]
        if all("\udc00" <= char <= "\udcff" for char in chars):
            return bytes(ord(char) - 0xDC00 for char in chars), error.end
    raise error


codecs.register_error(_ESCAPE, _escape)


class BrokenStream(Exception):
    """The stored bytes cannot be read on: a corrupt or truncated gzip stream, or one past a limit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def known_encoding(name: str) -> str | None:
    """The canonical name of text encoding ``name``, or None if Python has no such text codec."""
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=name)  # refuses codecs that are not text encodings
        return codecs.lookup(name).name
    except LookupError:
        return None


@attrs.frozen
class Decoding:
    """How a file's bytes decode: the codec, and how to count the bytes a decoded text took."""

    #: The codec that reads the file (it skips a byte-order mark itself).
    codec: str
    #: The same encoding without a byte-order mark, to count bytes with.
    bare_codec: str
    #: Bytes of the byte-order mark at the start of the file.
    bom: int

    def byte_length(self, text: str) -> int:
        """How many bytes of the file ``text`` (read escaping) came from."""
        return len(text.encode(self.bare_codec, _ESCAPE))


def detect(head: bytes, declared: str | None) -> Decoding:
    """The decoding of a file starting with ``head``: its byte-order mark, else ``declared``, else UTF-8."""
    for mark, codec, bare in _BOMS:
        if head.startswith(mark):
            return Decoding(codec, bare, len(mark))
    name = known_encoding(declared) if declared else None
    return Decoding(name or "utf-8", name or "utf-8", 0)


class _Inflated(io.RawIOBase):
    """A gzip file's inflated bytes, refusing to go past the size and ratio limits."""

    def __init__(self, compressed: BinaryIO, limits: Limits) -> None:
        self._compressed = compressed
        self._gzip = gzip.GzipFile(fileobj=compressed, mode="rb")
        self._limits = limits
        self._inflated = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            count = self._gzip.readinto(buffer)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
            raise BrokenStream(
                f"the gzip stream is corrupt or truncated after {self._inflated} bytes: {error}"
            ) from None
        self._inflated += count
        if self._inflated > self._limits.decompressed_bytes:
            raise BrokenStream(f"the file inflates past the limit of {self._limits.decompressed_bytes} bytes")
        ratio = self._inflated / max(self._compressed.tell(), 1)
        if self._inflated > _RATIO_FLOOR and ratio > self._limits.compression_ratio:
            raise BrokenStream(
                f"the file inflates more than {self._limits.compression_ratio:g} times its compressed size"
                " (a decompression bomb?)"
            )
        return count

    def close(self) -> None:
        self._gzip.close()
        super().close()


@contextlib.contextmanager
def _open_bytes(path: Source, compression: str | None, limits: Limits) -> Iterator[io.BufferedReader[Any]]:
    """The stored file's content: inflated as it is read when ``compression`` is gzip."""
    with open(path, "rb") if isinstance(path, Path) else path() as stored:
        if compression != "gzip":
            yield stored
            return
        with io.BufferedReader(_Inflated(stored, limits), 64 * 1024) as inflated:
            yield inflated


@contextlib.contextmanager
def open_text(
    path: Source, compression: str | None, declared: str | None, limits: Limits, *, escaping: bool
) -> Iterator[tuple[TextIO, Decoding]]:
    """The stored file as text (lines ending at LF, CRLF or CR, none translated), and its decoding.

    Strict unless ``escaping``; see the module's docstring.
    """
    with _open_bytes(path, compression, limits) as content:
        decoding = detect(content.peek(4)[:4], declared)
        errors = _ESCAPE if escaping else "strict"
        text = io.TextIOWrapper(content, encoding=decoding.codec, errors=errors, newline="")
        try:
            yield text, decoding
        finally:
            text.detach()  # the byte stream is closed by its own context
