"""Job status and rejected rows: ``GET /jobs``, ``GET /jobs/{id}``, ``GET /jobs/{id}/errors`` (JSON or CSV)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ingestro.api.auth import caller_of
from ingestro.api.context import AppContext
from ingestro.api.pagination import bigint, cursor_of, limit_of, moment, page, uuid_part
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.domain.jobs import STATUSES

_JOB_COLUMNS = """
    job_id, status, dataset, dataset_version, filename, format, bytes, sha256, rows_total, rows_accepted,
    rows_rejected, rows_inserted, rows_updated, rows_duplicate, unknown_columns, options->'column_map' AS column_map,
    error, error_line,
    received_at, started_at, parsed_at, finished_at, updated_at, source, source_etag, source_last_modified,
    (SELECT coalesce(array_agg(earlier.job_id::text ORDER BY earlier.received_at, earlier.job_id), '{}')
       FROM jobs earlier
      WHERE earlier.tenant = jobs.tenant AND earlier.sha256 = jobs.sha256
        AND ($3::text IS NULL OR earlier.uploaded_by = $3)
        AND earlier.received_at < jobs.received_at) AS previously_ingested_as
"""
#: The jobs a caller may see: its tenant's, and of an upload key only those it uploaded ($2, $3). Every query of
#: ``_JOB_COLUMNS`` binds them: ``previously_ingested_as`` names only earlier jobs the caller may see too.
_VISIBLE = "tenant = $2 AND ($3::text IS NULL OR uploaded_by = $3)"


#: A cell starting with one of these is (or a spreadsheet may turn it into) a formula: OWASP's list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ERRORS_CSV_HEADER = ("line", "field", "code", "message", "raw")
#: $4, $5: only rows with an error of this field and/or code (NULL: any).
_ERRORS_SQL = """
SELECT line, errors, raw FROM validation_errors
 WHERE job_id = $1 AND line > $2
   AND (($4::text IS NULL AND $5::text IS NULL) OR EXISTS (
        SELECT 1 FROM jsonb_array_elements(errors) AS error
         WHERE ($4::text IS NULL OR error->>'field' = $4) AND ($5::text IS NULL OR error->>'code' = $5)))
 ORDER BY line LIMIT $3
"""
_EXPORT_PAGE = 1000


def _job_id(request: Request) -> uuid.UUID:
    raw = request.path_params["job_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Problem(404, "Not Found", f"no job {raw!r}") from None


def _visible_to(request: Request) -> tuple[str, str | None]:
    """The arguments of ``_VISIBLE`` for the caller."""
    caller = caller_of(request)
    return caller.tenant, caller.key_id if caller.own_jobs_only else None


async def _require_job(context: AppContext, request: Request, job_id: uuid.UUID) -> None:
    """404 unless the job exists and the caller may see it: another tenant's job is as good as absent."""
    if not await context.pool.fetchval(
        f"SELECT 1 FROM jobs WHERE job_id = $1 AND {_VISIBLE}", job_id, *_visible_to(request)
    ):
        raise Problem(404, "Not Found", f"no job {job_id}")


def job_view(row: Any) -> dict[str, Any]:
    view = dict(row)
    view["job_id"] = str(view["job_id"])
    return view


async def find_job(request: Request) -> dict[str, Any]:
    """The job of the path as ``GET /jobs/{id}`` shows it; 404 when absent or not the caller's to see."""
    context: AppContext = request.app.state.context
    job_id = _job_id(request)
    row = await context.pool.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = $1 AND {_VISIBLE}", job_id, *_visible_to(request)
    )
    if row is None:
        raise Problem(404, "Not Found", f"no job {job_id}")
    return job_view(row)


async def get_job(request: Request) -> Response:
    return JSON(await find_job(request))


def _filters(request: Request) -> tuple[str, list[Any]]:
    """SQL conditions (from ``$6`` on) and their arguments for ``?status=``, ``?dataset=``, ``?since=``, ``?until=``."""
    conditions: list[str] = []
    arguments: list[Any] = []
    params = request.query_params
    if "status" in params:
        statuses = [status.strip() for status in params["status"].split(",")]
        if unknown := [status for status in statuses if status not in STATUSES]:
            raise Problem(
                400, "Bad Request", f"unknown status {unknown[0]!r}; choose from {', '.join(s.value for s in STATUSES)}"
            )
        arguments.append(statuses)
        conditions.append(f"status = ANY(${5 + len(arguments)}::text[])")
    if "dataset" in params:
        arguments.append(params["dataset"])
        conditions.append(f"dataset = ${5 + len(arguments)}")
    for name, operator in (("since", ">="), ("until", "<")):
        if name in params:
            try:
                moment = datetime.fromisoformat(params[name])
            except ValueError:
                raise Problem(400, "Bad Request", f"{name} must be an ISO 8601 time, got {params[name]!r}") from None
            if moment.tzinfo is None:
                raise Problem(400, "Bad Request", f"{name} needs a time zone (e.g. 2024-05-01T00:00:00Z)")
            arguments.append(moment)
            conditions.append(f"received_at {operator} ${5 + len(arguments)}")
    return "".join(f" AND {condition}" for condition in conditions), arguments


async def list_jobs(request: Request) -> Response:
    """The caller's jobs, newest first; ``?status=`` (comma-separated), ``?dataset=``, ``?since=``/``?until=``
    (received at or after / before, ISO 8601 with a zone) narrow them."""
    context: AppContext = request.app.state.context
    limit = limit_of(request)
    # Before the first row: a cursor position past every (received_at, job_id).
    received_at, job_id = cursor_of(request, moment, uuid_part) or (
        datetime.max.replace(tzinfo=UTC),
        uuid.UUID(int=(1 << 128) - 1),
    )
    filters, arguments = _filters(request)
    rows = await context.pool.fetch(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE received_at IS NOT NULL AND {_VISIBLE}"
        f" AND (received_at, job_id) < ($4, $5){filters} ORDER BY received_at DESC, job_id DESC LIMIT $1",
        limit,
        *_visible_to(request),
        received_at,
        job_id,
        *arguments,
    )
    items = [job_view(row) for row in rows]
    position = [rows[-1]["received_at"].isoformat(), str(rows[-1]["job_id"])] if rows else None
    body, headers = page(request, items, limit, position)
    return JSON(body, headers=headers)


async def list_errors(request: Request) -> Response:
    """The job's rejected rows in line order: line, every field error, and the raw row.

    ``?format=csv``: all of them at once as CSV, one line per field error (see ``error_cells``).
    ``?field=`` and ``?code=``: only the rows with an error of that field and code (in CSV, only those errors).
    """
    context: AppContext = request.app.state.context
    job_id = _job_id(request)
    only = (request.query_params.get("field"), request.query_params.get("code"))
    export = request.query_params.get("format", "json")
    if export not in ("json", "csv"):
        raise Problem(400, "Bad Request", "format must be json or csv")
    if export == "csv":
        await _require_job(context, request, job_id)
        return StreamingResponse(
            _errors_csv(context, job_id, only),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{job_id}-errors.csv"'},
        )
    limit = limit_of(request)
    (after_line,) = cursor_of(request, bigint) or (0,)
    await _require_job(context, request, job_id)
    rows = await context.pool.fetch(_ERRORS_SQL, job_id, after_line, limit, *only)
    items = [dict(row) for row in rows]
    body, headers = page(request, items, limit, [rows[-1]["line"]] if rows else None)
    return JSON(body, headers=headers)


def _matches(error: dict[str, Any], only: tuple[str | None, str | None]) -> bool:
    field, code = only
    return (field is None or error.get("field") == field) and (code is None or error.get("code") == code)


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it: as text, a quote put before what would start a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def error_cells(line: int, errors: list[dict[str, Any]], raw: Any) -> list[list[str]]:
    """The CSV lines of one rejected row: one per field error, each with the raw row as JSON."""
    written = "" if raw is None else orjson.dumps(raw).decode()
    rows = [[str(line), error.get("field") or "", error["code"], error["message"], written] for error in errors]
    return [[spreadsheet_safe(cell) for cell in row] for row in rows or [[str(line), "", "", "", written]]]


async def _errors_csv(
    context: AppContext, job_id: uuid.UUID, only: tuple[str | None, str | None]
) -> AsyncIterator[str]:
    """The job's rejected rows as CSV, a page of rows at a time, never the whole set in memory."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ERRORS_CSV_HEADER)
    after = 0
    while True:
        rows = await context.pool.fetch(_ERRORS_SQL, job_id, after, _EXPORT_PAGE, *only)
        for row in rows:
            errors = [error for error in row["errors"] if _matches(error, only)]
            writer.writerows(error_cells(row["line"], errors or row["errors"], row["raw"]))
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < _EXPORT_PAGE:
            return
        after = rows[-1]["line"]
