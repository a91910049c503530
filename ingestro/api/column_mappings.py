"""``/datasets/{name}/mappings``: column mappings saved per dataset and header shape.

``PUT`` (an upload key, or admin) saves ``{"columns": [the header as written], "map": {column: field or null}}``
for the caller's tenant; ``GET ?columns=<JSON array of the header>`` (any key) finds the mapping saved for a
header of that shape (its columns compared trimmed and case-insensitive, in order; ``"map": null`` when none
is), so that the console maps the next file of the same shape by itself. A saved mapping is applied by
sending it with the upload (``?map=``), where it is checked against the dataset as it is then.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.auth import caller_of
from ingestro.api.bodies import bounded_body, media_type
from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.database.column_mappings import find_mapping, save_mapping
from ingestro.datasets import Dataset, UnknownDataset
from ingestro.datasets.column_maps import (
    MAX_COLUMN_CHARS,
    MAX_MAPPED_COLUMNS,
    InvalidColumnMap,
    checked_column_map,
    header_shape,
)
from ingestro.datasets.declarations import column_key

#: The largest body ``PUT`` reads: a header and mapping at their limits fit.
MAX_BODY_BYTES = 4 * MAX_MAPPED_COLUMNS * (MAX_COLUMN_CHARS + 16)


async def _dataset(request: Request) -> Dataset:
    context: AppContext = request.app.state.context
    name = request.path_params["name"]
    try:
        return await context.datasets.latest(name)
    except UnknownDataset:
        raise Problem(404, "Not Found", f"unknown dataset {name!r}") from None


def _header(value: Any) -> list[str]:
    """``value`` as a header: a non-empty JSON array of column names; 400 otherwise."""
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_MAPPED_COLUMNS
        # PostgreSQL's jsonb cannot hold a NUL, nor a file's header a usable one.
        or not all(
            isinstance(column, str) and len(column) <= MAX_COLUMN_CHARS and "\x00" not in column for column in value
        )
    ):
        raise Problem(
            400,
            "Bad Request",
            f"columns must be the file's header: a JSON array of 1 to {MAX_MAPPED_COLUMNS} names"
            f" of at most {MAX_COLUMN_CHARS} characters, without NUL",
        )
    return value


async def get_mapping(request: Request) -> Response:
    """200 with the mapping saved for the header ``?columns=`` (a JSON array); its ``map`` is null when none is."""
    context: AppContext = request.app.state.context
    dataset = await _dataset(request)
    raw = request.query_params.get("columns")
    if raw is None:
        raise Problem(400, "Bad Request", "give the file's header as ?columns=, a JSON array of its column names")
    try:
        columns = _header(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise Problem(400, "Bad Request", "columns must be a JSON array of column names") from None
    found = await find_mapping(context.pool, caller_of(request).tenant, dataset.name, columns)
    if found is None:  # an answer, not an error: most headers have none saved
        found = {"dataset": dataset.name, "shape": header_shape(columns), "columns": columns, "map": None}
        found["saved_at"] = None
    return JSON(found)


async def put_mapping(request: Request) -> Response:
    """200 with the saved mapping; 400 when it does not fit the dataset or the header."""
    context: AppContext = request.app.state.context
    dataset = await _dataset(request)
    if media_type(request, "application/json") != "application/json":
        raise Problem(415, "Unsupported Media Type", "send the mapping as application/json")
    body = await bounded_body(request, MAX_BODY_BYTES, f"a mapping is at most {MAX_BODY_BYTES} bytes")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or set(value) != {"columns", "map"}:
        raise Problem(400, "Bad Request", 'send {"columns": [the header], "map": {"column": "field" or null}}')
    columns = _header(value["columns"])
    try:
        column_map = checked_column_map(value["map"], dataset)
    except InvalidColumnMap as invalid:
        raise Problem(400, "Bad Request", str(invalid)) from None
    in_header = {column_key(column) for column in columns}
    absent = [column for column in column_map if column_key(column) not in in_header]
    if absent:
        raise Problem(400, "Bad Request", f"the mapping names columns the header does not have: {absent[:10]}")
    caller = caller_of(request)
    saved = await save_mapping(context.pool, caller.tenant, dataset.name, columns, column_map, caller.key_id)
    return JSON(saved)
