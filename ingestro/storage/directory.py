"""Upload storage in a local (or shared) directory: ``INGESTRO_UPLOAD_DIR``."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import attrs

from ingestro.storage.interface import Stored, TooLarge, check_key

#: Bytes of an upload gathered before one write (in a worker thread).
WRITE_BYTES = 256 * 1024


@attrs.frozen
class LocalStorage:
    """Uploads as files in ``root``, fsynced; shared by the API and the parser (a volume, or NFS)."""

    root: Path

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def save(self, key: str, chunks: AsyncIterator[bytes], limit: int) -> Stored:
        """See ``Storage.save``. The file appears under its name only once complete (written aside, then renamed).

        Every file operation runs in a worker thread, so a slow disk never blocks the event loop; the body is
        written in pieces of up to ``WRITE_BYTES``.
        """
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        final = self.path(key)
        partial = final.with_name(f".{key}.partial")
        digest = hashlib.sha256()
        size = 0
        try:
            out = await asyncio.to_thread(open, partial, "wb")
            try:
                pending = bytearray()
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"the upload is larger than the limit of {limit} bytes")
                    digest.update(chunk)
                    pending += chunk
                    if len(pending) >= WRITE_BYTES:
                        await asyncio.to_thread(out.write, pending)
                        pending = bytearray()
                await asyncio.to_thread(_write_and_sync, out, pending)
            finally:
                await asyncio.to_thread(out.close)
            await asyncio.to_thread(partial.rename, final)
            await asyncio.to_thread(_fsync_dir, self.root)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(partial.unlink, missing_ok=True))
            raise
        return Stored(key, size, digest.hexdigest())

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    def open(self, key: str) -> io.BufferedReader:
        return open(self.path(key), "rb")

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)


def _write_and_sync(out: io.BufferedWriter, tail: bytearray) -> None:
    out.write(tail)
    out.flush()
    os.fsync(out.fileno())


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
