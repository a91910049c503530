"""``ingestro upload``: send files to a running API; with ``--wait``, follow their jobs to the end.

Each file is streamed as a raw body named by ``?filename=`` (the server tells the format and gzip
from the name), with an Idempotency-Key of its own: a send that fails on the network is sent again
with the same key, so it can never make a second job.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

FINAL = ("completed", "failed")
_CHUNK = 1 << 20
_ATTEMPTS = 3
_SUMMARY = ("file", "job", "status", "rows", "accepted", "rejected", "inserted", "duplicates", "seconds", "rows/s")


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            yield chunk


async def send(client: httpx.AsyncClient, path: Path, dataset: str) -> httpx.Response:
    """POST the file, retried on network errors under one Idempotency-Key."""
    headers = {"content-type": "application/octet-stream", "idempotency-key": str(uuid.uuid4())}
    params = {"dataset": dataset, "filename": path.name}
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            response = await client.post("/upload", content=_chunks(path), headers=headers, params=params)
        except httpx.TransportError:
            if attempt == _ATTEMPTS:
                raise
            await asyncio.sleep(attempt)
            continue
        if response.status_code != 409:  # 409: our own first attempt is still being received
            return response
        await asyncio.sleep(attempt)
    return response


async def wait_for(client: httpx.AsyncClient, job_id: str, poll_s: float = 0.5) -> dict[str, Any]:
    while True:
        response = await client.get(f"/jobs/{job_id}")
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        if job["status"] in FINAL:
            return job
        await asyncio.sleep(poll_s)


def summary_row(name: str, job: dict[str, Any]) -> list[str]:
    seconds = None
    if job.get("received_at") and job.get("finished_at"):
        seconds = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["received_at"])).total_seconds()
    rows = job.get("rows_total") or 0
    rate = f"{rows / seconds:.0f}" if seconds else "-"
    counts = [str(job.get(key) or 0) for key in ("rows_accepted", "rows_rejected", "rows_inserted", "rows_duplicate")]
    return [name, job["job_id"], job["status"], str(rows), *counts, f"{seconds:.2f}" if seconds is not None else "-", rate]


def table(header: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [list(header), *rows])


async def upload_files(client: httpx.AsyncClient, paths: Sequence[Path], dataset: str, wait: bool, out: TextIO) -> int:
    """Upload each file; 1 when any was refused or (with ``wait``) any job failed, else 0."""
    code = 0
    accepted: list[tuple[str, str]] = []
    for path in paths:
        response = await send(client, path, dataset)
        if response.status_code not in (200, 202):
            detail = response.json().get("detail", response.text) if response.headers.get("content-type", "").endswith("json") else response.text
            print(f"{path}: refused ({response.status_code}): {detail}", file=out)
            code = 1
            continue
        job_id = response.json()["job_id"]
        print(f"{path}: job {job_id}", file=out)
        accepted.append((path.name, job_id))
    if wait and accepted:
        jobs = [(name, await wait_for(client, job_id)) for name, job_id in accepted]
        print(table(_SUMMARY, [summary_row(name, job) for name, job in jobs]), file=out)
        for name, job in jobs:
            if job["status"] == "failed":
                print(f"{name}: failed: {job.get('error')}", file=out)
                code = 1
    return code


_JOBS = ("job", "status", "dataset", "file", "rows", "accepted", "rejected", "inserted", "duplicates", "received")
_ERRORS = ("line", "field", "code", "message")


def _refusal(response: httpx.Response) -> str | None:
    """The API's reason when ``response`` is an error (problem+json detail), else None."""
    if response.is_success:
        return None
    is_json = response.headers.get("content-type", "").endswith("json")
    return f"{response.status_code}: {response.json().get('detail', response.text) if is_json else response.text}"


async def list_jobs(client: httpx.AsyncClient, limit: int, out: TextIO) -> int:
    """Print the newest ``limit`` jobs as a table; 1 when the API refuses."""
    response = await client.get("/jobs", params={"limit": limit})
    if (refused := _refusal(response)) is not None:
        print(f"jobs: refused ({refused})", file=out)
        return 1
    rows = [
        [
            job["job_id"],
            job["status"],
            job.get("dataset") or "",
            job.get("filename") or "",
            *(str(job.get(key) or 0) for key in ("rows_total", "rows_accepted", "rows_rejected", "rows_inserted", "rows_duplicate")),
            job.get("received_at") or "",
        ]
        for job in response.json()["items"]
    ]
    print(table(_JOBS, rows), file=out)
    return 0


async def show_errors(client: httpx.AsyncClient, job_id: str, as_csv: bool, out: TextIO) -> int:
    """Print a job's rejected rows: a table of every field error, or the API's CSV export; 1 when refused."""
    if as_csv:
        async with client.stream("GET", f"/jobs/{job_id}/errors", params={"format": "csv"}) as response:
            if not response.is_success:
                await response.aread()
                print(f"errors: refused ({_refusal(response)})", file=out)
                return 1
            async for text in response.aiter_text():
                out.write(text)
        return 0
    rows: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/jobs/{job_id}/errors", params=params)
        if (refused := _refusal(response)) is not None:
            print(f"errors: refused ({refused})", file=out)
            return 1
        page = response.json()
        for item in page["items"]:
            for error in item["errors"]:
                rows.append([str(item["line"]), error.get("field") or "", error["code"], error["message"]])
        cursor = page["next_cursor"]
        if not cursor:
            break
    print(table(_ERRORS, rows), file=out)
    return 0
