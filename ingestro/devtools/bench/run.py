"""One benchmark run: sample, baseline, stack, upload, wait, verify, measure."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx

from ingestro.datasets import get_dataset
from ingestro.datasets.tables import qualified_table
from ingestro.devtools.bench.baseline import Baseline, copy_baseline, write_copy_file
from ingestro.devtools.bench.peers import load_with_pgloader
from ingestro.devtools.bench.profile import Profiler
from ingestro.devtools.bench.report import Result
from ingestro.devtools.bench.stack import BenchError, Stack, Topology, is_server
from ingestro.devtools.bench.streams_memory import BacklogSampler, stream_figures
from ingestro.devtools.bench.timeline import read_timeline
from ingestro.devtools.bench.usage import UsageSampler
from ingestro.devtools.samples import Expected, write_sample_file
from ingestro.domain import codec
from ingestro.domain.events import ParseCompleted, ParseFailed
from ingestro.domain.jobs import JobStatus, is_final
from ingestro.streams.names import JOB_EVENTS_STREAM, PARSER_GROUP

#: The content type the file is uploaded with, by format.
_CONTENT_TYPES = {"csv": "text/csv", "json": "application/json", "ndjson": "application/x-ndjson"}
_CHUNK = 1024 * 1024
_POLL_S = 0.1
#: How long the job may take: generous, so that a slow machine gives slow figures rather than no figures.
_BASE_TIMEOUT_S = 120.0
_TIMEOUT_S_PER_ROW = 0.001


@attrs.frozen
class Options:
    rows: int
    format: str
    seed: int
    topology: Topology
    batch_size: int
    concurrency: int
    keep: bool = False
    #: Start the projections only once the parser is done.
    staged: bool = False
    #: Also time pgloader loading the same file (CSV only).
    peers: bool = False
    #: ``INGESTRO_PARSE_RANGE_BYTES``; None: a quarter of the file per parser process (with one, 0: no ranges).
    range_bytes: int | None = None
    #: Masters of a private Redis Cluster to run on; 0: one redis-server.
    redis_cluster: int = 0


def say(message: str) -> None:
    """Progress, on stderr: stdout is for the report."""
    print(message, file=sys.stderr, flush=True)


def run_bench(options: Options, profiler: Profiler | None = None) -> Result:
    """Run the benchmark once on fresh private servers; the data directory goes unless ``options.keep``.

    With a ``profiler``, every Ingestro process is profiled while the job runs.
    """
    root = Path(tempfile.mkdtemp(prefix="ingestro-bench-"))
    # As root, PostgreSQL runs as another user, which must be able to reach its data directory in here.
    root.chmod(0o711)
    try:
        return _run(root, options, profiler)
    finally:
        if options.keep:
            say(f"kept {root} (servers' data, uploads, logs)")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _run(root: Path, options: Options, profiler: Profiler | None) -> Result:
    dataset = get_dataset("contacts")
    sample = root / f"sample.{options.format}"
    say(f"writing {options.rows:,} {options.format} rows to {sample}")
    expected = write_sample_file(sample, options.format, options.rows, options.seed)
    say("normalizing them for the baseline COPY")
    copy_file = root / "baseline.csv"
    write_copy_file(sample, options.format, dataset, copy_file)
    with Stack(root, options.redis_cluster) as stack:
        say("starting redis-server and PostgreSQL")
        stack.start_servers()
        say("timing the baseline COPY")
        baseline = asyncio.run(copy_baseline(stack.postgres.url, dataset, copy_file))
        peer = None
        if options.peers:
            say("timing pgloader on the same file")
            peer = load_with_pgloader(
                stack.postgres.url, dataset, sample, options.rows, root / "pgloader", min(options.batch_size, 500)
            )
        say("starting the API and consumers")
        range_bytes = options.range_bytes
        if range_bytes is None:
            parsers = options.topology.parsers
            range_bytes = sample.stat().st_size // (4 * parsers) if parsers > 1 else 0
        say(f"parsing in ranges of {range_bytes:,} bytes" if range_bytes else "parsing the file on one parser")
        stack.start_api(
            {
                "INGESTRO_BATCH_SIZE": str(options.batch_size),
                "INGESTRO_CONCURRENCY": str(options.concurrency),
                "INGESTRO_PARSE_RANGE_BYTES": str(range_bytes),
            }
        )
        result = asyncio.run(_Measurement(stack, options, profiler, sample).run(expected, baseline))
        return attrs.evolve(result, peer=peer)


@attrs.define
class _Measurement:
    """Watches the stack's processes while the file goes through; then checks and times what happened."""

    stack: Stack
    options: Options
    profiler: Profiler | None
    sample: Path
    sampler: UsageSampler = attrs.field(factory=UsageSampler)

    async def start(self, counts: dict[str, int]) -> None:
        """Start consumers and watch every process not yet watched (the servers and the API too, at first)."""
        self.stack.start_consumers(counts)
        await self.stack.wait_ready(counts)
        new = {label: pid for label, pid in self.stack.pids().items() if label not in self.sampler.usage}
        self.sampler.watch(new)
        if self.profiler is not None:
            self.profiler.start({label: pid for label, pid in new.items() if not is_server(label)})

    async def run(self, expected: Expected, baseline: Baseline) -> Result:
        counts = self.options.topology.counts()
        late: dict[str, int] = {}
        if self.options.staged:
            # The projections wait until the parser is done, so each stage is timed alone.
            late = {group: count for group, count in counts.items() if group != PARSER_GROUP}
            counts = {PARSER_GROUP: counts[PARSER_GROUP]}
        await self.start(counts)
        load_before = os.getloadavg()[0]
        self.sampler.start()
        streams = self.stack.streams_client()
        backlog = BacklogSampler(streams)
        backlog.start()
        projections_started = 0.0
        try:
            async with httpx.AsyncClient(base_url=self.stack.api_url, timeout=httpx.Timeout(120.0)) as client:
                say(f"uploading {self.sample.stat().st_size / 1024**2:.1f} MB")
                started = time.time()
                job_id = await _upload(client, self.sample, self.options.format)
                upload_s = time.time() - started
                if late:
                    say("waiting for the parser to finish")
                    await self.wait_for_parse()
                    say("starting the projections")
                    await self.start(late)
                    projections_started = time.time()
                say("waiting for the job to complete")
                timeout_s = _BASE_TIMEOUT_S + self.options.rows * _TIMEOUT_S_PER_ROW
                job = await _wait_for_job(client, self.stack, job_id, timeout_s)
        finally:
            profiles = self.profiler.stop() if self.profiler is not None else {}
            usage = self.sampler.stop()
            peak_backlog = await backlog.stop()
        load_after = os.getloadavg()[0]
        finished = datetime.fromisoformat(job["finished_at"]).timestamp()
        mismatches = await _mismatches(self.stack.postgres.url, job, expected, baseline)
        try:
            timeline = await read_timeline(streams, projections_started)
            figures = await stream_figures(streams, job["rows_accepted"] or 0, peak_backlog)
        finally:
            await streams.aclose()
        return Result(
            rows=self.options.rows,
            format=self.options.format,
            bytes=self.sample.stat().st_size,
            seed=self.options.seed,
            batch_size=self.options.batch_size,
            concurrency=self.options.concurrency,
            processes=self.options.topology.counts(),
            staged=self.options.staged,
            counts_exact=not mismatches,
            mismatches=mismatches,
            valid_rows=expected.valid,
            upload_s=upload_s,
            e2e_s=finished - started,
            parse_s=timeline.parse_s if timeline else None,
            projection_s=timeline.projection_s if timeline else None,
            after_parse_s=finished - timeline.parse_completed if timeline else None,
            baseline=baseline,
            usage=usage,
            profiles=profiles,
            load_average=(load_before, load_after),
            sampled_s=self.sampler.sampled_s,
            machine_cpu_s=self.sampler.machine_cpu_s,
            streams=figures,
        )

    async def wait_for_parse(self) -> None:
        """Return once the parser appended its verdict (the last job event while no projection runs)."""
        streams = self.stack.streams_client()
        try:
            while True:
                last: Any = await streams.xrevrange(JOB_EVENTS_STREAM, count=1)
                if last and codec.event_type(last[0][1]) in (ParseCompleted.type_name, ParseFailed.type_name):
                    return
                self.stack.check_alive()
                await asyncio.sleep(_POLL_S)
        finally:
            await streams.aclose()


async def _upload(client: httpx.AsyncClient, sample: Path, file_format: str) -> str:
    """POST the file as a raw body, streamed from disk; return the job id."""

    async def chunks() -> AsyncIterator[bytes]:
        with sample.open("rb") as file:
            while chunk := file.read(_CHUNK):
                yield chunk

    size = (await asyncio.to_thread(sample.stat)).st_size
    headers = {
        "content-type": _CONTENT_TYPES[file_format],
        # Declared up front, so the body goes as it is rather than in chunked encoding.
        "content-length": str(size),
        "x-filename": sample.name,
    }
    response = await client.post("/upload", content=chunks(), headers=headers)
    if response.status_code != 202:
        raise BenchError(f"upload answered {response.status_code}: {response.text}")
    job_id: str = response.json()["job_id"]
    return job_id


async def _wait_for_job(client: httpx.AsyncClient, stack: Stack, job_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"/jobs/{job_id}")
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        if is_final(job["status"]):
            return job
        stack.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"job {job_id} still {job['status']} after {timeout_s:.0f} s: {job}")
        await asyncio.sleep(_POLL_S)


async def _mismatches(database_url: str, job: dict[str, Any], expected: Expected, baseline: Baseline) -> list[str]:
    """Every way the job, the tables and the baseline differ from what the sample must give."""
    connection = await asyncpg.connect(database_url)
    try:
        contacts = await connection.fetchval(f"SELECT count(*) FROM {qualified_table(get_dataset('contacts').table)}")
        lines = await connection.fetch(
            "SELECT line FROM validation_errors WHERE job_id = $1 ORDER BY line", job["job_id"]
        )
    finally:
        await connection.close()
    checks: list[tuple[str, Any, Any]] = [
        ("job status", job["status"], JobStatus.COMPLETED),
        ("job rows_total", job["rows_total"], expected.rows),
        ("job rows_accepted", job["rows_accepted"], expected.valid),
        ("job rows_rejected", job["rows_rejected"], expected.invalid),
        ("job rows_inserted", job["rows_inserted"], expected.distinct),
        ("job rows_duplicate", job["rows_duplicate"], expected.duplicates),
        ("contacts rows", contacts, expected.distinct),
        ("validation_errors rows", len(lines), expected.invalid),
        ("baseline rows", baseline.rows, expected.distinct),
    ]
    found = [f"{what}: {got!r}, expected {want!r}" for what, got, want in checks if got != want]
    if job["error"]:
        found.append(f"job error: {job['error']} (line {job['error_line']})")
    if len(lines) == expected.invalid and tuple(row["line"] for row in lines) != expected.invalid_lines:
        found.append("validation_errors lines differ from the sample's invalid lines")
    return found
