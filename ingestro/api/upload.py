"""``POST /upload``: the HTTP side of an upload; ``ingestro.services.uploads`` stores and announces it.

The handler turns the request into plain values (the dataset, the options, the file's chunks and what
the file is) and the service's outcome, or its refusal, into the answer; Idempotency-Key is HTTP's
and stays here (``ingestro.api.idempotency``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
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
from ingestro.api.upload_options import (
    GZIP_MEDIA_TYPES,
    check_sheet,
    is_gzip,
    query_options,
    request_is_gzip,
    requested_dataset,
    requested_format,
    sniffed,
)
from ingestro.domain.events import UploadOptions
from ingestro.domain.jobs import JobStatus
from ingestro.services.uploads import Accepted, EmptyUpload, FileFacts, Uploader, Uploads
from ingestro.storage import TooLarge

MEDIA_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/jsonlines": "ndjson",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
}
SUPPORTED = (
    "text/csv, application/json, application/x-ndjson, an XLSX or Parquet media type, or application/octet-stream"
    " holding an XLSX or Parquet file (or multipart/form-data with a `file` field)"
)


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
    """The request as the upload service's values, its outcome as the answer; ``idempotent``: the request's key and
    that key's earlier outcome."""
    settings = context.settings
    dataset = await requested_dataset(request, context.datasets)
    query_format = requested_format(request)
    upload_options = query_options(request, dataset)
    gzip_body = request_is_gzip(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise Problem(
            413, "Content Too Large", f"the upload is larger than the limit of {settings.max_upload_bytes} bytes"
        )

    media_type = _media_type(request.headers.get("content-type"))
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
        chunks = _checked(multipart, query_format, upload_options)

        def facts() -> FileFacts:  # the file field's headers, read with its bytes
            return FileFacts(multipart.filename, multipart.format, is_gzip(multipart.filename, multipart.content_type))
    else:
        filename = request.headers.get("x-filename") or request.query_params.get("filename")
        # A gzip body names its format by ?format= or the name of the file inside (x.csv.gz).
        file_format = query_format or MEDIA_TYPES.get(media_type) or detect_format(filename, None)
        chunks = request.stream()
        if file_format is None and media_type in ("", "application/octet-stream") and not gzip_body:
            file_format, chunks = await sniffed(chunks)  # an XLSX or Parquet file tells itself
        if file_format is None:
            raise Problem(415, "Unsupported Media Type", f"unsupported content type {media_type!r}; send {SUPPORTED}")
        check_sheet(upload_options, file_format)
        raw = FileFacts(filename, file_format, gzip_body or media_type in GZIP_MEDIA_TYPES or is_gzip(filename, None))

        def facts() -> FileFacts:
            return raw

    uploads = Uploads(context.redis, context.pool, context.storage, settings.max_upload_bytes)
    previous = idempotent[1] if idempotent is not None else None
    try:
        outcome = await uploads.receive(
            chunks,
            facts,
            Uploader(caller.tenant, caller.key_id),
            dataset,
            upload_options,
            repeat=previous is not None,
        )
    except TooLarge as error:
        raise Problem(413, "Content Too Large", str(error)) from None
    except EmptyUpload as error:
        raise Problem(400, "Bad Request", str(error)) from None
    request_fingerprint = idempotency.fingerprint(request, outcome.sha256)
    if previous is not None:
        body = idempotency.replay(previous, request_fingerprint)
        return JSON(body, headers={"Location": f"/jobs/{body['job_id']}", "Idempotent-Replayed": "true"})

    assert isinstance(outcome, Accepted)
    event = outcome.event
    body = {
        "job_id": event.job_id,
        "status": JobStatus.PENDING.value,
        "dataset": event.dataset,
        "dataset_version": event.dataset_version,
        "filename": event.filename,
        "format": event.format,
        "compression": event.options.compression,
        "bytes": event.bytes,
        "sha256": event.sha256,
    }
    if idempotent is not None:
        await idempotency.complete(
            context.redis,
            caller,
            idempotent[0],
            settings.idempotency_ttl_s,
            idempotency.Outcome(request_fingerprint, body),
        )
    return JSON(body, status_code=202, headers={"Location": f"/jobs/{event.job_id}"})


async def _checked(multipart: MultipartFile, query_format: str | None, options: UploadOptions) -> AsyncIterator[bytes]:
    """The file field's bytes, refusing as soon as its headers show an unsupported type, or a format ``options``
    do not apply to."""
    async for data in multipart.chunks(query_format):
        if multipart.format is None:
            raise Problem(
                415,
                "Unsupported Media Type",
                f"cannot tell the format of {multipart.filename or 'the file'!r}"
                f" (content type {multipart.content_type!r}); name it .csv, .json, .ndjson, .xlsx or .parquet,"
                " or pass ?format=",
            )
        check_sheet(options, multipart.format)
        yield data
