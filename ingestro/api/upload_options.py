"""How an upload asks to be read: ``?delimiter=``, ``?encoding=``, ``?max_errors=``, ``?max_error_rate=``,
``?sheet=``, ``?map=``, gzip, and a binary format told by its first bytes.

Each option is checked here, so that a bad one is a 400 (or 415) before any byte is
stored, and the parser only ever sees options it can apply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import PurePosixPath

from starlette.requests import Request

from ingestro.api.problems import Problem
from ingestro.datasets import Dataset, UnknownDataset
from ingestro.datasets.column_maps import ColumnMap, InvalidColumnMap, parse_column_map
from ingestro.datasets.registry import DatasetRegistry
from ingestro.domain.events import UploadOptions
from ingestro.formats.csv_rows import DELIMITERS
from ingestro.formats.decoding import UnusableEncoding, stream_encoding
from ingestro.formats.readers import FORMATS
from ingestro.formats.stored import OLE_MAGIC, PARQUET_MAGIC, ZIP_MAGIC

GZIP_MEDIA_TYPES = frozenset({"application/gzip", "application/x-gzip"})
_GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
#: Excel's limit on a sheet name's length.
SHEET_NAME_CHARS = 31


async def requested_dataset(request: Request, datasets: DatasetRegistry) -> Dataset:
    """The latest version of ``?dataset=`` (default ``contacts``); a 404 when there is no such dataset."""
    name = request.query_params.get("dataset", "contacts")
    try:
        return await datasets.latest(name)
    except UnknownDataset:
        raise Problem(404, "Not Found", f"unknown dataset {name!r}") from None


def requested_format(request: Request) -> str | None:
    """``?format=``, None when not given; a 400 when it is not one the readers know."""
    given = request.query_params.get("format")
    if given is not None and given not in FORMATS:
        raise Problem(400, "Bad Request", f"format must be one of {', '.join(FORMATS)}")
    return given


def query_options(request: Request, dataset: Dataset) -> UploadOptions:
    """The options given in the query string (compression is told by headers and names: see ``is_gzip``);
    ``?map=`` is checked against ``dataset``."""
    params = request.query_params
    delimiter, encoding = reading_options(request)
    sheet = params.get("sheet")
    if sheet is not None and not 1 <= len(sheet) <= SHEET_NAME_CHARS:
        raise Problem(400, "Bad Request", f"sheet must name an XLSX sheet: 1 to {SHEET_NAME_CHARS} characters")
    return UploadOptions(
        sheet=sheet,
        delimiter=delimiter,
        encoding=encoding,
        max_errors=_count(params.get("max_errors"), "max_errors"),
        max_error_rate=_share(params.get("max_error_rate"), "max_error_rate"),
        column_map=_column_map(params.getlist("map"), dataset),
    )


def check_sheet(options: UploadOptions, file_format: str | None) -> None:
    """A 400 when ``?sheet=`` is given for a file that is not an XLSX workbook (it would be ignored)."""
    if options.sheet is not None and file_format is not None and file_format != "xlsx":
        raise Problem(400, "Bad Request", f"sheet is only for XLSX workbooks; this file is {file_format}")


def reading_options(request: Request) -> tuple[str | None, str | None]:
    """``?delimiter=`` and ``?encoding=`` (its canonical name), each None when not given; a 400 when unusable."""
    params = request.query_params
    delimiter = params.get("delimiter")
    if delimiter is not None and delimiter not in DELIMITERS:
        raise Problem(400, "Bad Request", "delimiter must be one of , ; | or a tab (%09)")
    encoding = params.get("encoding")
    if encoding is not None:
        try:
            encoding = stream_encoding(encoding)
        except UnusableEncoding as unusable:
            raise Problem(400, "Bad Request", str(unusable)) from None
    return delimiter, encoding


def _column_map(raw: list[str], dataset: Dataset) -> ColumnMap | None:
    if not raw:
        return None
    if len(raw) > 1:
        raise Problem(400, "Bad Request", "give map once, as one JSON object")
    try:
        return parse_column_map(raw[0], dataset) or None
    except InvalidColumnMap as invalid:
        raise Problem(400, "Bad Request", str(invalid)) from None


def _count(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise Problem(400, "Bad Request", f"{name} must be a whole number, at least 0")
    return int(raw)


def _share(raw: str | None, name: str) -> float | None:
    if raw is None:
        return None
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:  # NaN fails this too
        raise Problem(400, "Bad Request", f"{name} must be a number from 0 to 1")
    return share


def request_is_gzip(request: Request) -> bool:
    """Whether the body is gzip-encoded (``Content-Encoding``); 415 for a coding other than gzip."""
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity"):
        return False
    if coding in _GZIP_CODINGS:
        return True
    raise Problem(415, "Unsupported Media Type", f"unsupported Content-Encoding {coding!r}; send gzip or none")


def is_gzip(filename: str | None, media_type: str | None) -> bool:
    """Whether a file named ``filename`` of type ``media_type`` is gzip-compressed."""
    if filename and PurePosixPath(filename.replace("\\", "/")).suffix.lower() == ".gz":
        return True
    return (media_type or "").split(";", 1)[0].strip().lower() in GZIP_MEDIA_TYPES


def sniff_format(head: bytes) -> str | None:
    """The binary format a file starting with ``head`` is in: a zip archive or an OLE file (a password-protected
    workbook) is ``xlsx``, ``PAR1`` is ``parquet``; None for any other."""
    if head.startswith((ZIP_MAGIC, OLE_MAGIC)):
        return "xlsx"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    return None


async def sniffed(chunks: AsyncIterator[bytes]) -> tuple[str | None, AsyncIterator[bytes]]:
    """The format ``sniff_format`` tells from the first bytes of ``chunks``, and all of ``chunks`` still to read."""
    head = b""
    iterator = aiter(chunks)
    async for chunk in iterator:
        head += chunk
        if len(head) >= len(OLE_MAGIC):
            break

    async def again() -> AsyncIterator[bytes]:
        if head:
            yield head
        async for chunk in iterator:
            yield chunk

    return sniff_format(head), again()
