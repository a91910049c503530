"""Outbound requests to URLs that clients choose, without becoming a tool for SSRF: pull imports' sources
(``http(s)://``, ``s3://``) and webhook endpoints.

``addresses`` says which addresses may be reached (checked after DNS resolution, on every redirect);
``fetch`` sends requests to the checked address only (``send_checked``) and opens a source by its scheme
(``open_source``), ``s3`` reads ``s3://bucket/key``.
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
