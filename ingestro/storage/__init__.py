"""Upload storage: where the API keeps an upload until the parser reads it.

``INGESTRO_STORAGE_URL`` picks the backend: unset, the directory ``INGESTRO_UPLOAD_DIR``
(``directory``); ``s3://bucket/prefix``, S3 or an S3-compatible server (``s3``). Both
implement ``interface.Storage``.
"""

from __future__ import annotations

from ingestro.config import Settings
from ingestro.storage.directory import LocalStorage
from ingestro.storage.interface import Storage, Stored, TooLarge

__all__ = ["LocalStorage", "Storage", "Stored", "TooLarge", "storage_for"]


def storage_for(settings: Settings) -> Storage:
    """The storage ``INGESTRO_STORAGE_URL`` names: unset, ``INGESTRO_UPLOAD_DIR``; ``s3://bucket/prefix``, S3."""
    url = settings.storage_url
    if not url:
        return LocalStorage(settings.upload_dir)
    if url.startswith("s3://"):
        from ingestro.storage.s3 import S3Storage  # boto3 is imported only where S3 is used

        return S3Storage.from_url(url, settings.s3_endpoint_url or None)
    raise ValueError(f"INGESTRO_STORAGE_URL={url!r}: expected s3://bucket[/prefix], or unset for a directory")
