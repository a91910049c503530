"""``POST /imports``: a pull import. The body names the source; the query takes the options of ``POST /upload``.

The API checks what it can without touching the network (the scheme, the format, the options, a literal
address) and answers 202 with the new job; the ``fetcher`` consumer pulls the file (``consumers.fetcher``),
checking every address the source resolves to or redirects to, and fails the job with the reason when
it may not or cannot.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import attrs
import orjson
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.auth import caller_of
from ingestro.api.bodies import bounded_body, media_type
from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.api.upload import detect_format
from ingestro.api.upload_options import check_sheet, is_gzip, query_options, requested_dataset, requested_format
from ingestro.domain.events import ImportRequested
from ingestro.domain.jobs import JobStatus
from ingestro.sources import AllowList, FetchFailed, Refused, check_scheme
from ingestro.streams.publisher import publish
from projections.jobs import record_import_requested

log = logging.getLogger(__name__)

#: The largest request body: a JSON object naming a source.
MAX_BODY_BYTES = 8 * 1024
#: The longest source URL.
MAX_SOURCE_CHARS = 2048


async def _source_of(request: Request) -> str:
    if media_type(request) != "application/json":
        raise Problem(415, "Unsupported Media Type", 'send {"source": "https://…"} as application/json')
    body = await bounded_body(request, MAX_BODY_BYTES, f"an import request is at most {MAX_BODY_BYTES} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "Bad Request", "the body is not JSON") from None
    source = document.get("source") if isinstance(document, dict) else None
    if not isinstance(source, str) or not source:
        raise Problem(400, "Bad Request", 'the body must be {"source": "https://…" or "s3://bucket/key"}')
    if len(source) > MAX_SOURCE_CHARS or not source.isprintable() or source != source.strip():
        raise Problem(
            400, "Bad Request", f"the source must be a URL of at most {MAX_SOURCE_CHARS} printable characters"
        )
    return source


def check_source(source: str, allow: AllowList) -> None:
    """400 for what needs no network to refuse: the scheme, credentials, a literal address not allowed."""
    try:
        check_scheme(source)
        host = urlsplit(source).hostname
    except (FetchFailed, ValueError) as error:
        raise Problem(400, "Bad Request", str(error)) from None
    if host is None or urlsplit(source).scheme == "s3":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: the fetcher checks what it resolves to
    try:
        allow.check(address)
    except Refused as refused:
        raise Problem(400, "Bad Request", f"refused source: {refused}") from None


async def create_import(request: Request) -> Response:
    """202 and the new job, which the ``fetcher`` goes on with."""
    context: AppContext = request.app.state.context
    caller = caller_of(request)
    dataset = await requested_dataset(request, context.datasets)
    query_format = requested_format(request)
    options = query_options(request, dataset)
    source = await _source_of(request)
    check_source(source, AllowList(context.settings.import_allow))
    name = PurePosixPath(unquote(urlsplit(source).path)).name
    file_format = query_format or detect_format(name, None)
    if file_format is None:
        raise Problem(400, "Bad Request", f"cannot tell the format of {name or source!r}; pass ?format=")
    check_sheet(options, file_format)
    event = ImportRequested(
        job_id=str(uuid.uuid4()),
        source=source,
        dataset=dataset.name,
        dataset_version=dataset.version,
        format=file_format,
        options=attrs.evolve(options, compression="gzip" if is_gzip(name, None) else None),
        tenant=caller.tenant,
        requested_by=caller.key_id,
        requested_at=datetime.now(UTC).isoformat(),
    )
    async with context.pool.acquire() as connection:  # first: the job is listed (and can fail) from the start
        await record_import_requested(connection, event)
    await publish(context.redis, event)
    log.info("import requested", extra={"job_id": event.job_id})
    body = {
        "job_id": event.job_id,
        "status": JobStatus.PENDING.value,
        "dataset": event.dataset,
        "dataset_version": event.dataset_version,
        "source": event.source,
        "format": event.format,
        "compression": event.options.compression,
    }
    return JSON(body, status_code=202, headers={"Location": f"/jobs/{event.job_id}"})
