"""A stored file opened for random access, as the binary formats (XLSX, Parquet) need it.

Their readers seek (a zip archive's directory is at its end, a Parquet file's footer too), so
they read the stored file itself, not a stream of it. Failing to open or read it is the
storage's fault, ``StorageFailed``, as for the text formats.
"""

from __future__ import annotations

import contextlib
import errno
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ingestro.formats.decoding import Source, StorageFailed

#: Bytes a binary format's file starts with.
ZIP_MAGIC = b"PK\x03\x04"
#: An OLE compound file: an encrypted (password-protected) workbook, or a legacy .xls.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PARQUET_MAGIC = b"PAR1"


class _Seekable(io.RawIOBase):
    """The stored bytes, seekable; any failure to read them is ``StorageFailed``."""

    def __init__(self, stored: BinaryIO) -> None:
        self._stored = stored

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            return self._stored.seek(offset, whence)
        except OSError as error:
            if error.errno == errno.EINVAL:
                raise  # a position before the start: the file's reader asked for it, the file is broken
            raise StorageFailed(f"seeking in the stored file failed: {type(error).__name__}: {error}") from error
        except Exception as error:
            raise StorageFailed(f"seeking in the stored file failed: {type(error).__name__}: {error}") from error

    def tell(self) -> int:
        return self._stored.tell()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            count = self._stored.readinto(buffer)  # type: ignore[attr-defined]
        except Exception as error:
            raise StorageFailed(f"reading the stored file failed: {type(error).__name__}: {error}") from error
        return int(count or 0)


@contextlib.contextmanager
def open_seekable(path: Source) -> Iterator[io.BufferedReader[Any]]:
    """The stored file as a buffered, seekable reader, closed on leaving."""
    try:
        stored = open(path, "rb") if isinstance(path, Path) else path()  # noqa: SIM115 - closed below
    except Exception as error:
        raise StorageFailed(f"opening the stored file failed: {type(error).__name__}: {error}") from error
    with stored, io.BufferedReader(_Seekable(stored), 64 * 1024) as content:
        yield content


def file_size(content: BinaryIO) -> int:
    """How many bytes ``content`` holds (its position is kept)."""
    here = content.tell()
    size = content.seek(0, io.SEEK_END)
    content.seek(here)
    return size
