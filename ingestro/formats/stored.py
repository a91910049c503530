"""A stored file opened for random access, as the binary formats (XLSX, Parquet) need it.

Their readers seek (a zip archive's directory is at its end, a Parquet file's footer too), so
they read the stored file itself, not a stream of it. Failing to open or read it is the
storage's fault, ``StorageFailed``, as for the text formats.
"""

from __future__ import annotations

import contextlib
import errno
import io
from typing import Any, BinaryIO

from ingestro.formats.decoding import Source, StorageFailed, StoredBytes, open_stored

#: Bytes a binary format's file starts with.
ZIP_MAGIC = b"PK\x03\x04"
#: An OLE compound file: an encrypted (password-protected) workbook, or a legacy .xls.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PARQUET_MAGIC = b"PAR1"


class _Seekable(StoredBytes):
    """The stored bytes, seekable; any failure to read them is ``StorageFailed``."""

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


def open_seekable(path: Source) -> contextlib.AbstractContextManager[io.BufferedReader[Any]]:
    """The stored file as a buffered, seekable reader, closed on leaving."""
    return open_stored(path, _Seekable)


def file_size(content: BinaryIO) -> int:
    """How many bytes ``content`` holds (its position is kept)."""
    here = content.tell()
    size = content.seek(0, io.SEEK_END)
    content.seek(here)
    return size
