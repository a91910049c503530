"""``POST /datasets/infer``: a draft declaration (TOML and JSON) inferred from a sample of a file.

Any API key may ask: it reads nothing stored and writes nothing (declaring the draft,
``PUT /datasets/{name}``, needs an admin key). The body is the sample itself, raw:
CSV, a JSON array or NDJSON, uncompressed, at most ``MAX_SAMPLE_BYTES``; the start of
a larger file does (a row cut short at its end is skipped). The format comes from
``?format=``, else the ``?filename=`` extension, else the content type.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.api.upload import detect_format
from ingestro.api.upload_options import reading_options
from ingestro.datasets import NAME, InvalidDeclaration
from ingestro.datasets.declarations import unstructured
from ingestro.datasets.inference import declaration_toml, field_name, infer_dataset
from ingestro.formats.sample import Sample, UnreadableSample, read_sample
from ingestro.services.uploads import display_name

#: Largest sample accepted: enough rows to judge types, little enough to read in memory.
MAX_SAMPLE_BYTES = 1024 * 1024
#: Rows of the sample looked at, at most.
MAX_SAMPLE_ROWS = 10_000
_DEFAULT_NAME = "new_dataset"


def _dataset_name(request: Request, filename: str) -> str:
    given = request.query_params.get("name")
    if given is not None:
        if not NAME.fullmatch(given):
            raise Problem(400, "Bad Request", "name must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63)")
        return given
    stem = PurePosixPath(filename).name.split(".")[0] if filename else ""
    return field_name(stem, 0) if stem else _DEFAULT_NAME


async def infer(request: Request) -> Response:
    """200 with the draft: ``toml``, ``declaration`` (JSON), ``candidate_keys``, ``columns``, ``notes``."""
    filename = display_name(request.query_params.get("filename"))
    name = _dataset_name(request, filename)
    delimiter, encoding = reading_options(request)
    content_type = request.headers.get("content-type")
    if "gzip" in (content_type or "") or filename.lower().endswith(".gz") or request.headers.get("content-encoding"):
        raise Problem(415, "Unsupported Media Type", "send the sample uncompressed (CSV, JSON or NDJSON)")
    file_format = request.query_params.get("format") or detect_format(filename, content_type)
    if file_format not in ("csv", "json", "ndjson"):
        raise Problem(
            415, "Unsupported Media Type", "say the format: ?format=csv|json|ndjson, a file name, or the content type"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SAMPLE_BYTES:
            raise Problem(
                413, "Content Too Large", f"a sample is at most {MAX_SAMPLE_BYTES} bytes: send the file's start"
            )
    if not body.strip():
        raise Problem(400, "Bad Request", "the sample is empty")
    try:
        return JSON(await asyncio.to_thread(_draft, bytes(body), name, file_format, delimiter, encoding, filename))
    except UnreadableSample as error:
        raise Problem(422, "Unprocessable Content", str(error)) from None
    except InvalidDeclaration as error:  # pragma: no cover - inferred names are made valid
        raise Problem(422, "Unprocessable Content", str(error)) from None


def _draft(
    data: bytes, name: str, file_format: str, delimiter: str | None, encoding: str | None, filename: str
) -> dict[str, Any]:
    sample: Sample = read_sample(data, file_format, delimiter=delimiter, encoding=encoding, max_rows=MAX_SAMPLE_ROWS)
    draft = infer_dataset(name, sample.columns, sample.rows)
    notes = list(draft.notes)
    if sample.skipped:
        notes.append(f"{sample.skipped} row(s) of the sample did not parse and were left out")
    source = f" of {filename}" if filename else ""
    comments = [f"Draft inferred from {draft.rows_sampled} row(s){source}: review it before declaring."]
    if draft.candidate_keys:
        comments.append(
            f"Candidate keys (present and distinct in the sample): {', '.join(draft.candidate_keys)};"
            f' set key = ["{draft.candidate_keys[0]}"] to make rows with the same one update each other.'
        )
    comments += notes
    return {
        "name": name,
        "toml": declaration_toml(draft.dataset, comments),
        "declaration": unstructured(draft.dataset),
        "candidate_keys": list(draft.candidate_keys),
        "columns": list(sample.columns),
        "rows_sampled": draft.rows_sampled,
        "rows_skipped": sample.skipped,
        "format": file_format,
        "delimiter": sample.delimiter,
        "notes": notes,
    }
