"""Pull-import sources: fetching a file from ``http(s)://`` or ``s3://`` without becoming a tool for SSRF.

``addresses`` says which addresses a source may be fetched from (checked after DNS resolution, on every
redirect); ``http`` and ``s3`` stream a source's bytes; ``open_source`` picks one by the URL's scheme.
"""

from __future__ import annotations

from ingestro.sources.addresses import AllowList, Refused
from ingestro.sources.fetch import SCHEMES, Fetched, FetchFailed, Retryable, check_scheme, open_source, send_checked

__all__ = [
    "SCHEMES",
    "AllowList",
    "FetchFailed",
    "Fetched",
    "Refused",
    "Retryable",
    "check_scheme",
    "open_source",
    "send_checked",
]
