"""``ingestro upload``: files sent to the API, jobs followed to their end, a summary and an exit code."""

from __future__ import annotations

import asyncio
import gzip
import io
from pathlib import Path

import httpx

from ingestro.cli.client import list_jobs, send, show_errors, table, upload_files
from ingestro.cli.main import build_parser
from tests.served import app_of, served
from tests.stack import Stack
from tests.test_api import CSV
from tests.test_job_events import contacts


async def test_files_are_uploaded_waited_for_and_summarized(stack: Stack, tmp_path: Path) -> None:
    stack.start_consumers()
    plain, packed = tmp_path / "people.csv", tmp_path / "more.ndjson.gz"
    plain.write_bytes(CSV)
    packed.write_bytes(
        gzip.compress(
            b'{"email": "b@example.com", "first_name": "B", "last_name": "C", "signup_date": "2024-01-02"}\n'
            b'{"email": "bad"}\n'
        )
    )
    out = io.StringIO()
    assert await upload_files(stack.client, [plain, packed], "contacts", True, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{plain}: job ") and lines[1].startswith(f"{packed}: job ")
    header, first, second = lines[2].split(), lines[3].split(), lines[4].split()
    assert header[:9] == ["file", "job", "status", "rows", "accepted", "rejected", "inserted", "updated", "duplicates"]
    assert (first[0], first[2:8]) == ("people.csv", ["completed", "1", "1", "0", "1", "0"])
    assert (second[0], second[2:8]) == ("more.ndjson.gz", ["completed", "2", "1", "1", "1", "0"])


async def test_a_refused_upload_or_failed_job_exits_1(stack: Stack, tmp_path: Path) -> None:
    stack.start_consumers()
    empty, broken = tmp_path / "empty.csv", tmp_path / "broken.json"
    empty.write_bytes(b"")
    broken.write_bytes(b'[{"email": ')
    out = io.StringIO()
    assert await upload_files(stack.client, [empty, broken], "contacts", True, out) == 1
    assert "empty.csv: refused (400): the upload is empty" in out.getvalue()
    assert "broken.json: failed: invalid JSON" in out.getvalue()


async def test_a_send_whose_answer_was_lost_is_retried_without_a_second_job(stack: Stack, tmp_path: Path) -> None:
    class LosesFirstAnswer(httpx.AsyncBaseTransport):
        """The server gets the first upload, but its answer never reaches the client."""

        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner, self.lost = inner, False

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            if not self.lost:
                self.lost = True
                raise httpx.ReadError("connection reset", request=request)
            return response

    path = tmp_path / "people.csv"
    path.write_bytes(CSV)
    transport = LosesFirstAnswer(httpx.ASGITransport(app=stack.client._transport.app))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestro.test") as client:
        response = await send(client, path, "contacts")
    assert response.status_code == 200  # the first attempt's job, given back
    assert await stack.pool.fetchval("SELECT count(*) FROM jobs") == 1
    assert response.json()["job_id"] == str(await stack.pool.fetchval("SELECT job_id FROM jobs"))


def test_the_command_reads_its_url_from_the_option_or_the_environment() -> None:
    args = build_parser().parse_args(["upload", "a.csv", "b.csv", "--wait", "--url", "http://x:1"])
    assert (args.files, args.wait, args.url, args.dataset) == (["a.csv", "b.csv"], True, "http://x:1", "contacts")


def test_the_summary_is_an_aligned_table() -> None:
    assert table(("a", "bb"), [["ccc", "d"]]) == "a    bb\nccc  d"


async def test_jobs_are_printed_newest_first_as_a_table(stack: Stack) -> None:
    stack.start_consumers()
    first = await stack.ingest(CSV)
    second = await stack.ingest(CSV)
    out = io.StringIO()
    assert await list_jobs(stack.client, 10, out) == 0
    header, *rows = out.getvalue().splitlines()
    assert header.split()[:10] == [
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
    ]
    assert [row.split()[0] for row in rows] == [second["job_id"], first["job_id"]]
    assert rows[0].split()[1:3] == ["completed", "contacts"]


async def test_a_jobs_errors_are_printed_one_line_per_field_error_or_as_csv(stack: Stack) -> None:
    stack.start_consumers()
    job = await stack.ingest(b"email,first_name,last_name,age,signup_date\nnope,A,B,x,2024-01-05\n")
    out = io.StringIO()
    assert await show_errors(stack.client, job["job_id"], False, out) == 0
    header, *rows = out.getvalue().splitlines()
    assert header.split() == ["line", "field", "code", "message"]
    assert [row.split()[:3] for row in rows] == [["2", "email", "invalid_email"], ["2", "age", "invalid_integer"]]

    exported = io.StringIO()
    assert await show_errors(stack.client, job["job_id"], True, exported) == 0
    assert exported.getvalue().splitlines()[0].startswith("line,field,code,message")


async def test_errors_of_an_unknown_job_exit_1_with_the_reason(stack: Stack) -> None:
    out = io.StringIO()
    assert await show_errors(stack.client, "00000000-0000-4000-8000-000000000009", False, out) == 1
    assert "refused (404" in out.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_goes_to_stderr_as_a_few_plain_lines_when_it_is_not_a_terminal(
    stack: Stack, tmp_path: Path
) -> None:
    stack.start_consumers()
    path = tmp_path / "people.csv"
    path.write_bytes(CSV)
    out, err = io.StringIO(), io.StringIO()
    assert await upload_files(stack.client, [path], "contacts", True, out, err) == 0
    lines = err.getvalue().splitlines()
    size = f"{len(CSV)} B"
    assert lines[:4] == [f"people.csv: sent {share}% ({size} of {size})" for share in (25, 50, 75, 100)]
    assert lines[-1] == "people.csv: completed (rows 1, accepted 1, rejected 0, inserted 1, updated 0, duplicates 0)"
    assert "\r" not in err.getvalue()
    assert "people.csv" in out.getvalue().splitlines()[-1]  # the summary table stays on stdout


async def test_on_a_terminal_the_bytes_and_the_job_are_redrawn_in_place(stack: Stack, tmp_path: Path) -> None:
    stack.start_consumers()
    path = tmp_path / "people.csv"
    path.write_bytes(contacts(valid=300, invalid=20))
    err = Terminal()
    assert await upload_files(stack.client, [path], "contacts", True, io.StringIO(), err) == 0
    shown = err.getvalue()
    assert f"\rpeople.csv: [{'#' * 30}] 100%" in shown
    last = shown.rstrip("\n").rsplit("\r", 1)[-1].rstrip()
    assert last == "people.csv: completed  rows 320, accepted 300, rejected 20, inserted 300, updated 0, duplicates 0"
    assert "sent 25%" not in shown


async def test_a_job_is_followed_live_from_its_event_stream_not_polled(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(CSV)
    asked: list[str] = []

    async def note(request: httpx.Request) -> None:
        asked.append(request.url.path)

    async with served(app_of(stack)) as url, httpx.AsyncClient(base_url=url, event_hooks={"request": [note]}) as client:
        uploading = asyncio.create_task(
            upload_files(client, [path], "contacts", True, io.StringIO(), err := io.StringIO())
        )
        while not any(asked_path.endswith("/events") for asked_path in asked):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # following a pending job: nothing is polled meanwhile
        stack.start_consumers()
        assert await uploading == 0
    job_paths = [asked_path for asked_path in asked if asked_path.startswith("/jobs/")]
    job_id = job_paths[0].split("/")[2]
    assert job_paths == [f"/jobs/{job_id}/events", f"/jobs/{job_id}"]  # the stream, then the summary's one read
    statuses = [line.split()[1] for line in err.getvalue().splitlines() if "sent" not in line]
    assert statuses[0] == "pending" and statuses[-1] == "completed"


async def test_a_job_whose_stream_is_refused_is_polled_and_a_failed_one_exits_1(stack: Stack, tmp_path: Path) -> None:
    class OlderServer(httpx.AsyncBaseTransport):
        """An API without GET /jobs/{id}/events."""

        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/events"):
                return httpx.Response(404, json={"detail": "no such route"})
            return await self.inner.handle_async_request(request)

    stack.start_consumers()
    path = tmp_path / "broken.json"
    path.write_bytes(b'[{"email": ')
    transport = OlderServer(httpx.ASGITransport(app=app_of(stack)))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestro.test") as client:
        out = io.StringIO()
        assert await upload_files(client, [path], "contacts", True, out, io.StringIO()) == 1
    assert "broken.json: failed: invalid JSON" in out.getvalue()
