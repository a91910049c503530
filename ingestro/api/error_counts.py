"""``GET /jobs/{id}/errors/counts``: how many field errors a job's rejected rows have, by code and field.

What a reviewer looks at first (which rule rejected most rows), and the values the
``?code=`` and ``?field=`` filters of ``GET /jobs/{id}/errors`` can take.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.context import AppContext
from ingestro.api.jobs import find_job
from ingestro.api.responses import JSON

_COUNTS_SQL = """
SELECT error->>'code' AS code, error->>'field' AS field, count(*) AS errors
  FROM validation_errors, jsonb_array_elements(errors) AS error
 WHERE job_id = $1
 GROUP BY 1, 2
 ORDER BY 3 DESC, 1, 2
"""


async def error_counts(request: Request) -> Response:
    """``items``: one per (code, field) pair, most frequent first: ``code``, ``field`` (null: the row), ``errors``."""
    context: AppContext = request.app.state.context
    job = await find_job(request)  # 404 unless the caller may see it
    rows = await context.pool.fetch(_COUNTS_SQL, job["job_id"])
    return JSON({"items": [dict(row) for row in rows]})
