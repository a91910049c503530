"""``POST /upload``: stream the body to storage, announce FileReceived, answer 202."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import PurePosixPath

import attrs
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api import idempotency
from ingestro.api.auth import Caller, caller_of
from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.api.upload_options import GZIP_MEDIA_TYPES, is_gzip, query_options, request_is_gzip
from ingestro.datasets import UnknownDataset
from ingestro.domain.events import FileReceived
from ingestro.domain.jobs import JobStatus
from ingestro.formats.readers import FORMATS
from ingestro.metrics import UPLOAD_BYTES, UPLOADS
from ingestro.storage import TooLarge
from ingestro.streams.publisher import publish
from projections.jobs import record_file_received

log = logging.getLogger(__name__)

MEDIA_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/jsonlines": "ndjson",
}
EXTENSIONS = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}
SUPPORTED = "text/csv, application/json or application/x-ndjson (or multipart/form-data with a `file` field)"


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


@attrs.define
class MultipartFile:
    """Streams the ``file`` field out of a multipart body as its bytes arrive."""

    request: Request
    boundary: bytes
    filename: str | None = None
    content_type: str | None = None
    _headers: dict[bytes, bytes] = attrs.field(factory=dict)
    _field: bytes = b""
    _value: bytes = b""
    _in_file: bool = False
    _seen_file: bool = False
    _done_file: bool = False
    _pending: list[bytes] = attrs.field(factory=list)
    _format: str | None = None

    async def chunks(self, query_format: str | None) -> AsyncIterator[bytes]:
        parser = MultipartParser(
            self.boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": lambda data, start, end: self._add_field(data[start:end]),
                "on_header_value": lambda data, start, end: self._add_value(data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )
        async for chunk in self.request.stream():
            try:
                parser.write(chunk)
            except Exception as error:  # python-multipart raises its own error types
                raise Problem(400, "Bad Request", f"malformed multipart body: {error}") from None
            if self._seen_file and self._format is None:
                self._format = query_format or detect_format(self.filename, self.content_type)
            for data in self._pending:
                yield data
            self._pending.clear()
        try:
            parser.finalize()
        except Exception as error:
            raise Problem(400, "Bad Request", f"malformed multipart body: {error}") from None
        if not self._seen_file:
            raise Problem(400, "Bad Request", "the multipart body has no `file` field")
        if not self._done_file:
            raise Problem(400, "Bad Request", "the multipart body ended inside the `file` field")
        for data in self._pending:
            yield data

    @property
    def format(self) -> str | None:
        return self._format

    def _part_begin(self) -> None:
        self._headers = {}

    def _add_field(self, data: bytes) -> None:
        self._field += data

    def _add_value(self, data: bytes) -> None:
        self._value += data

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and not self._seen_file:
            self._in_file = self._seen_file = True
            filename = options.get(b"filename")
            self.filename = filename.decode("utf-8", "replace") if filename is not None else None
            self.content_type = self._headers.get(b"content-type", b"").decode("latin-1") or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file, self._done_file = False, True


def detect_format(filename: str | None, content_type: str | None) -> str | None:
    """The file format from a file name's extension (before any .gz), else from a media type; None if neither tells."""
    if filename:
        suffixes = [suffix.lower() for suffix in PurePosixPath(filename.replace("\\", "/")).suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes.pop()
        if suffixes and suffixes[-1] in EXTENSIONS:
            return EXTENSIONS[suffixes[-1]]
    return MEDIA_TYPES.get(_media_type(content_type))


def display_name(filename: str | None) -> str:
    """The client's file name, for display only: its last path part, printable, at most 255 characters."""
    if not filename:
        return ""
    name = PurePosixPath(filename.replace("\\", "/")).name
    return "".join(ch for ch in name if ch.isprintable())[:255]


async def upload(request: Request) -> Response:
    """202 and the new job; with an Idempotency-Key already used, the original answer (see api/idempotency.py)."""
    context: AppContext = request.app.state.context
    caller = caller_of(request)
    key = idempotency.key_of(request)
    if key is None:
        return await _upload(request, context, caller, None)
    previous = await idempotency.claim(context.redis, caller, key, context.settings.idempotency_ttl_s)
    try:
        return await _upload(request, context, caller, (key, previous))
    except BaseException:
        if previous is None:
            with contextlib.suppress(Exception):  # when Redis is down, the claim expires by itself
                await idempotency.release(context.redis, caller, key)
        raise


async def _upload(
    request: Request, context: AppContext, caller: Caller, idempotent: tuple[str, idempotency.Outcome | None] | None
) -> Response:
    """Store the file and announce its job; ``idempotent``: the request's key and that key's earlier outcome."""
    settings = context.settings
    dataset_name = request.query_params.get("dataset", "contacts")
    try:
        dataset = await context.datasets.latest(dataset_name)
    except UnknownDataset:
        raise Problem(404, "Not Found", f"unknown dataset {dataset_name!r}") from None
    query_format = request.query_params.get("format")
    if query_format is not None and query_format not in FORMATS:
        raise Problem(400, "Bad Request", f"format must be one of {', '.join(FORMATS)}")
    upload_options = query_options(request)
    gzip_body = request_is_gzip(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise Problem(
            413, "Content Too Large", f"the upload is larger than the limit of {settings.max_upload_bytes} bytes"
        )

    job_id = str(uuid.uuid4())
    media_type = _media_type(request.headers.get("content-type"))
    multipart: MultipartFile | None = None
    if media_type == "multipart/form-data":
        _, options = parse_options_header(request.headers["content-type"])
        boundary = options.get(b"boundary")
        if not boundary:
            raise Problem(400, "Bad Request", "multipart/form-data without a boundary")
        if gzip_body:
            raise Problem(
                415, "Unsupported Media Type", "a multipart body cannot be gzip-encoded; send the file as name.csv.gz"
            )
        multipart = MultipartFile(request, boundary)
        chunks = _checked(multipart, query_format)
        filename = None
        file_format: str | None = None
    else:
        filename = request.headers.get("x-filename") or request.query_params.get("filename")
        # A gzip body names its format by ?format= or the name of the file inside (x.csv.gz).
        file_format = query_format or MEDIA_TYPES.get(media_type) or detect_format(filename, None)
        if file_format is None:
            raise Problem(415, "Unsupported Media Type", f"unsupported content type {media_type!r}; send {SUPPORTED}")
        chunks = request.stream()
        gzip_body = gzip_body or media_type in GZIP_MEDIA_TYPES or is_gzip(filename, None)

    try:
        stored = await context.storage.save(job_id, chunks, settings.max_upload_bytes)
    except TooLarge as error:
        raise Problem(413, "Content Too Large", str(error)) from None
    if multipart is not None:
        filename, file_format = multipart.filename, multipart.format
        gzip_body = is_gzip(multipart.filename, multipart.content_type)
    if stored.bytes == 0 or file_format is None:  # an empty file field tells no format either
        await context.storage.delete(stored.key)
        raise Problem(400, "Bad Request", "the upload is empty")
    request_fingerprint = idempotency.fingerprint(request, stored.sha256)
    if idempotent is not None and idempotent[1] is not None:
        # A repeat: its file was needed to compare it with the first; the first's job stands.
        await context.storage.delete(stored.key)
        body = idempotency.replay(idempotent[1], request_fingerprint)
        return JSON(body, headers={"Location": f"/jobs/{body['job_id']}", "Idempotent-Replayed": "true"})

    event = FileReceived(
        job_id=job_id,
        dataset=dataset_name,
        filename=display_name(filename),
        storage_key=stored.key,
        format=file_format,
        bytes=stored.bytes,
        sha256=stored.sha256,
        received_at=datetime.now(UTC).isoformat(),
        options=attrs.evolve(upload_options, compression="gzip" if gzip_body else None),
        tenant=caller.tenant,
        uploaded_by=caller.key_id,
        dataset_version=dataset.version,
    )
    try:
        position = await publish(context.redis, event)
    except Exception:
        await context.storage.delete(stored.key)
        raise
    try:
        async with context.pool.acquire() as connection:
            await record_file_received(connection, event, position)
    except Exception:
        # The event is durable: the jobs projection will create the row from it.
        log.warning("could not seed the job row; the jobs projection will", extra={"job_id": job_id}, exc_info=True)
    log.info("upload received", extra={"job_id": job_id, "bytes": stored.bytes, "format": file_format})
    UPLOADS.labels("accepted", file_format).inc()  # refusals are counted around this endpoint (api/metrics.py)
    UPLOAD_BYTES.labels(file_format).inc(stored.bytes)
    body = {
        "job_id": job_id,
        "status": JobStatus.PENDING.value,
        "dataset": dataset_name,
        "dataset_version": dataset.version,
        "filename": event.filename,
        "format": file_format,
        "compression": event.options.compression,
        "bytes": stored.bytes,
        "sha256": stored.sha256,
    }
    if idempotent is not None:
        outcome = idempotency.Outcome(request_fingerprint, body)
        await idempotency.complete(context.redis, caller, idempotent[0], settings.idempotency_ttl_s, outcome)
    return JSON(body, status_code=202, headers={"Location": f"/jobs/{job_id}"})


async def _checked(multipart: MultipartFile, query_format: str | None) -> AsyncIterator[bytes]:
    """The file field's bytes, refusing as soon as its headers show an unsupported type."""
    async for data in multipart.chunks(query_format):
        if multipart.format is None:
            raise Problem(
                415,
                "Unsupported Media Type",
                f"cannot tell the format of {multipart.filename or 'the file'!r}"
                f" (content type {multipart.content_type!r}); name it .csv, .json or .ndjson,"
                " or pass ?format=",
            )
        yield data
