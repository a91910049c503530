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
import string
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
    """The stored bytes cannot be read on: a corrupt or truncated gzip stream, one past a limit, or one
    that the declared encoding cannot read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StorageFailed(Exception):
    """Opening or reading the stored bytes failed (a disk, the network, S3): the storage's fault, not the file's.

    Every other error met while reading a file is the file's (or its options'), and would be met
    again on every reading of it; this one may not be, so it is worth retrying. The storage's
    error is its ``__cause__``.
    """


class UnusableEncoding(ValueError):
    """A declared encoding that cannot read an upload; the message says why."""


#: What every usable encoding must carry exactly: the letters, digits, punctuation and line
#: breaks that CSV and JSON are written with.
_PROBE = string.ascii_letters + string.digits + " \t\r\n,;|\"'\\/{}[]:.-+_()"


def stream_encoding(name: str) -> str:
    """The canonical name of encoding ``name`` if it can read an upload, else ``UnusableEncoding``.

    The rule, derived from what the readers do with it rather than from a list of names:
    a Python text encoding (bytes to str: not a bytes-to-bytes codec such as base64 or
    zlib, nor a text transform such as rot13) whose incremental decoder, fed one byte at
    a time, gives back the CSV and JSON characters it encoded, without a byte-order mark
    (a file that has one is read by the mark's encoding whatever was declared, so a
    declared one only ever reads files without), and whose bytes can be counted when
    some do not decode. ``undefined``, ``punycode``, ``idna`` and ``utf-16``/``utf-32``
    (no byte order of their own) fail it.
    """
    shown = repr(name[:100])
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a name holding NUL
        raise UnusableEncoding(f"unknown text encoding {shown}") from None
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=name)  # refuses codecs that are not text encodings
    except LookupError:
        raise UnusableEncoding(
            f"{shown} is not a text encoding (it turns bytes into bytes, or text into text)"
        ) from None
    encoded = b""
    try:
        encoded = _PROBE.encode(info.name)
        decoder = info.incrementaldecoder("strict")
        bare = _without_bom(encoded)
        decoded = "".join(decoder.decode(bare[at : at + 1]) for at in range(len(bare)))
        decoded += decoder.decode(b"", final=True)
        Decoding(info.name, info.name, 0).byte_length(_PROBE + "\udcff")
    except Exception as error:  # a codec may raise anything on what it was not made for
        if _without_bom(encoded) != encoded:
            raise UnusableEncoding(
                f"the encoding {shown} reads only files that start with a byte-order mark, and those are read"
                " by their mark whatever is declared; for a file without one, name the byte order (e.g. utf-16-le)"
            ) from None
        raise UnusableEncoding(
            f"the encoding {shown} cannot read a file as a stream ({type(error).__name__}: {error})"
        ) from None
    if decoded != _PROBE:
        raise UnusableEncoding(f"the encoding {shown} does not read back the characters CSV and JSON are made of")
    return info.name


def _without_bom(data: bytes) -> bytes:
    for mark, _, _ in _BOMS:
        if data.startswith(mark):
            return data[len(mark) :]
    return data


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
        try:
            return len(text.encode(self.bare_codec, _ESCAPE))
        except UnicodeEncodeError:
            # UTF-16 and UTF-32 encoders take no replacement shorter than their code unit:
            # count the escaped bytes apart (these encodings have no state, so lengths add up).
            escaped = len(ESCAPED.findall(text))
            return len(ESCAPED.sub("", text).encode(self.bare_codec)) + escaped


def detect(head: bytes, declared: str | None) -> Decoding:
    """The decoding of a file starting with ``head``: its byte-order mark, else ``declared``, else UTF-8.

    ``BrokenStream`` when ``declared`` is needed and cannot read a file (see ``stream_encoding``).
    """
    for mark, codec, bare in _BOMS:
        if head.startswith(mark):
            return Decoding(codec, bare, len(mark))
    if not declared:
        return Decoding("utf-8", "utf-8", 0)
    try:
        name = stream_encoding(declared)
    except UnusableEncoding as unusable:
        raise BrokenStream(str(unusable)) from None
    return Decoding(name, name, 0)


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


class StoredBytes(io.RawIOBase):
    """The stored bytes as they are read from storage; any failure to read them is ``StorageFailed``."""

    def __init__(self, stored: BinaryIO) -> None:
        self._stored = stored
        self._read = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._read

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            count = self._stored.readinto(buffer)  # type: ignore[attr-defined]
        except Exception as error:
            raise StorageFailed(f"reading the stored file failed: {type(error).__name__}: {error}") from error
        self._read += count or 0
        return int(count or 0)


@contextlib.contextmanager
def open_stored(path: Source, raw: type[StoredBytes] = StoredBytes) -> Iterator[io.BufferedReader[Any]]:
    """The stored bytes as they are, buffered, read through ``raw``; a failure to open or read them is
    ``StorageFailed``."""
    try:
        stored = open(path, "rb") if isinstance(path, Path) else path()  # noqa: SIM115 - closed below
    except Exception as error:
        raise StorageFailed(f"opening the stored file failed: {type(error).__name__}: {error}") from error
    with stored, io.BufferedReader(raw(stored), 64 * 1024) as content:
        yield content


@contextlib.contextmanager
def _open_bytes(path: Source, compression: str | None, limits: Limits) -> Iterator[io.BufferedReader[Any]]:
    """The stored file's content: inflated as it is read when ``compression`` is gzip."""
    with open_stored(path) as stored:
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
