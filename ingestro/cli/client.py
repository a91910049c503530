"""``ingestro upload``: send files to a running API; with ``--wait``, follow their jobs to the end.

Each file is streamed as a raw body named by ``?filename=`` (the server tells the format and gzip
from the name), with an Idempotency-Key of its own: a send that fails on the network is sent again
with the same key, so it can never make a second job. With ``--wait``, each job is followed live
through ``GET /jobs/{id}/events`` (Server-Sent Events); should that stream be refused or cut, the
job is polled instead. Progress goes to stderr (``ingestro.cli.progress``), the summary to stdout.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
import orjson

from ingestro.api.upload import detect_format
from ingestro.api.upload_options import sniff_format
from ingestro.cli.progress import JobProgress, UploadProgress
from ingestro.domain.jobs import JobStatus, is_final
from ingestro.formats.stored import OLE_MAGIC

_CHUNK = 1 << 20
_ATTEMPTS = 3
_SUMMARY = (
    "file",
    "job",
    "status",
    "rows",
    "accepted",
    "rejected",
    "inserted",
    "updated",
    "duplicates",
    "seconds",
    "rows/s",
)


async def _chunks(path: Path, shown: UploadProgress | None = None) -> AsyncIterator[bytes]:
    sent = 0
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            yield chunk
            sent += len(chunk)  # asked for the next chunk: this one is on its way
            if shown is not None:
                shown.sent(sent)


def _is_workbook(path: Path) -> bool:
    """Whether the API will read ``path`` as XLSX: by its name, else by its first bytes."""
    told = detect_format(path.name, None)
    if told is not None:
        return told == "xlsx"
    with path.open("rb") as file:
        return sniff_format(file.read(len(OLE_MAGIC))) == "xlsx"


async def send(
    client: httpx.AsyncClient,
    path: Path,
    dataset: str,
    shown: UploadProgress | None = None,
    *,
    sheet: str | None = None,
    column_map: dict[str, str | None] | None = None,
) -> httpx.Response:
    """POST the file, retried on network errors under one Idempotency-Key; ``shown``: where its bytes are drawn;
    ``sheet``: the XLSX sheet to read; ``column_map``: the API's ``?map=``."""
    headers = {"content-type": "application/octet-stream", "idempotency-key": str(uuid.uuid4())}
    params = {"dataset": dataset, "filename": path.name}
    if sheet is not None and _is_workbook(path):  # the API refuses ?sheet= for other files
        params["sheet"] = sheet
    if column_map:
        params["map"] = orjson.dumps(column_map).decode()
    for attempt in range(1, _ATTEMPTS + 1):
        if attempt > 1 and shown is not None:
            shown.restart()
        try:
            response = await client.post("/upload", content=_chunks(path, shown), headers=headers, params=params)
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
        if is_final(job["status"]):
            return job
        await asyncio.sleep(poll_s)


async def server_sent_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """The events of a ``text/event-stream`` response: (name, data as JSON); comments are skipped."""
    name = "message"
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, orjson.loads("\n".join(data))
            name, data = "message", []
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


async def follow(client: httpx.AsyncClient, job_id: str, shown: JobProgress) -> str | None:
    """Show the job's events until it ends; its final status, or None when the stream was refused or cut."""
    try:
        async with client.stream("GET", f"/jobs/{job_id}/events") as response:
            if response.status_code != 200:
                await response.aread()
                return None
            async for name, data in server_sent_events(response):
                if name == "progress":
                    shown.progress(data)
                elif name == "status":
                    shown.status_changed(data["status"], data.get("error"))
                    if is_final(data["status"]):
                        return str(data["status"])
    except httpx.TransportError:  # cut: the caller asks for the job itself
        return None
    finally:
        shown.done()
    return None


def summary_row(name: str, job: dict[str, Any]) -> list[str]:
    seconds = None
    if job.get("received_at") and job.get("finished_at"):
        seconds = (
            datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["received_at"])
        ).total_seconds()
    rows = job.get("rows_total") or 0
    rate = f"{rows / seconds:.0f}" if seconds else "-"
    counts = [
        str(job.get(key) or 0)
        for key in ("rows_accepted", "rows_rejected", "rows_inserted", "rows_updated", "rows_duplicate")
    ]
    return [
        name,
        job["job_id"],
        job["status"],
        str(rows),
        *counts,
        f"{seconds:.2f}" if seconds is not None else "-",
        rate,
    ]


def table(header: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [list(header), *rows]
    )


async def upload_files(
    client: httpx.AsyncClient,
    paths: Sequence[Path],
    dataset: str,
    wait: bool,
    out: TextIO,
    err: TextIO | None = None,
    *,
    sheet: str | None = None,
    column_map: dict[str, str | None] | None = None,
) -> int:
    """Upload each file (read with ``column_map``, if any); 1 when any was refused or (with ``wait``) any job
    failed, else 0.

    ``err``: where progress is shown (bytes sent; with ``wait``, each job's events), redrawn in
    place when it is a terminal; None: nowhere.
    """
    code = 0
    accepted: list[tuple[str, str]] = []
    tty = err is not None and err.isatty()
    for path in paths:
        shown = UploadProgress(err, path.name, path.stat().st_size, tty) if err is not None else None
        response = await send(client, path, dataset, shown, sheet=sheet, column_map=column_map)
        if shown is not None:
            shown.done()
        if response.status_code not in (200, 202):
            detail = (
                response.json().get("detail", response.text)
                if response.headers.get("content-type", "").endswith("json")
                else response.text
            )
            print(f"{path}: refused ({response.status_code}): {detail}", file=out)
            code = 1
            continue
        job_id = response.json()["job_id"]
        print(f"{path}: job {job_id}", file=out)
        accepted.append((path.name, job_id))
    if wait and accepted:
        code = max(code, await wait_and_summarize(client, accepted, out, err))
    return code


async def wait_and_summarize(
    client: httpx.AsyncClient, accepted: Sequence[tuple[str, str]], out: TextIO, err: TextIO | None
) -> int:
    """Follow each (name, job id) to its end (progress on ``err``), print the summary table; 1 if any failed."""
    code = 0
    if err is not None:
        for name, job_id in accepted:
            await follow(client, job_id, JobProgress(err, name, err.isatty()))
    # The summary needs every field (timestamps too); a job not followed to its end is polled.
    jobs = [(name, await wait_for(client, job_id)) for name, job_id in accepted]
    print(table(_SUMMARY, [summary_row(name, job) for name, job in jobs]), file=out)
    for name, job in jobs:
        if job["status"] == JobStatus.FAILED:
            print(f"{name}: failed: {job.get('error')}", file=out)
            code = 1
    return code


_JOBS = (
    "job",
    "status",
    "dataset",
    "file",
    "rows",
    "accepted",
    "rejected",
    "inserted",
    "updated",
    "duplicates",
    "received",
)
_ERRORS = ("line", "field", "code", "message")


def refusal(response: httpx.Response) -> str | None:
    """The API's reason when ``response`` is an error (problem+json detail), else None."""
    if response.is_success:
        return None
    is_json = response.headers.get("content-type", "").endswith("json")
    return f"{response.status_code}: {response.json().get('detail', response.text) if is_json else response.text}"


async def list_jobs(client: httpx.AsyncClient, limit: int, out: TextIO) -> int:
    """Print the newest ``limit`` jobs as a table; 1 when the API refuses."""
    response = await client.get("/jobs", params={"limit": limit})
    if (refused := refusal(response)) is not None:
        print(f"jobs: refused ({refused})", file=out)
        return 1
    rows = [
        [
            job["job_id"],
            job["status"],
            job.get("dataset") or "",
            job.get("filename") or "",
            *(
                str(job.get(key) or 0)
                for key in (
                    "rows_total",
                    "rows_accepted",
                    "rows_rejected",
                    "rows_inserted",
                    "rows_updated",
                    "rows_duplicate",
                )
            ),
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
                print(f"errors: refused ({refusal(response)})", file=out)
                return 1
            async for text in response.aiter_text():
                out.write(text)
        return 0
    rows: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/jobs/{job_id}/errors", params=params)
        if (refused := refusal(response)) is not None:
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
