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

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.bodies import bounded_body
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.api.upload import detect_format
from ingestro.api.upload_options import reading_options
from ingestro.datasets import NAME, InvalidDeclaration
from ingestro.datasets.inference import field_name
from ingestro.formats.drafts import MAX_SAMPLE_BYTES, draft_of_sample
from ingestro.formats.sample import UnreadableSample
from ingestro.services.uploads import display_name

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
    body = await bounded_body(
        request, MAX_SAMPLE_BYTES, f"a sample is at most {MAX_SAMPLE_BYTES} bytes: send the file's start"
    )
    if not body.strip():
        raise Problem(400, "Bad Request", "the sample is empty")
    try:
        return JSON(await asyncio.to_thread(draft_of_sample, body, name, file_format, delimiter, encoding, filename))
    except UnreadableSample as error:
        raise Problem(422, "Unprocessable Content", str(error)) from None
    except InvalidDeclaration as error:  # pragma: no cover - inferred names are made valid
        raise Problem(422, "Unprocessable Content", str(error)) from None
