"""``GET /data?dataset=NAME``: the rows ingested into a dataset's table, in content-hash order."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.context import AppContext
from ingestro.api.pagination import cursor_of, limit_of, page, text
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.datasets import UnknownDataset
from ingestro.datasets.tables import SYSTEM_COLUMN_SQL, qualified_table, quote_ident

#: The bookkeeping columns a row is shown with (the upload positions only order rows: see projections/data.py).
SHOWN_BOOKKEEPING = tuple(name for name, _ in SYSTEM_COLUMN_SQL if not name.endswith("_position"))


async def list_data(request: Request) -> Response:
    context: AppContext = request.app.state.context
    name = request.query_params.get("dataset", "contacts")
    try:
        dataset = await context.datasets.latest(name)
    except UnknownDataset:
        raise Problem(404, "Not Found", f"unknown dataset {name!r}") from None
    limit = limit_of(request)
    (after_hash,) = cursor_of(request, text) or ("",)
    table = qualified_table(dataset.table)
    columns = ", ".join(map(quote_ident, (*dataset.field_names, *SHOWN_BOOKKEEPING)))
    rows = await context.pool.fetch(
        f"SELECT {columns} FROM {table} WHERE content_hash > $1 ORDER BY content_hash LIMIT $2", after_hash, limit
    )
    items = [dict(row) for row in rows]
    body, headers = page(request, items, limit, [rows[-1]["content_hash"]] if rows else None)
    return JSON(body, headers=headers)
