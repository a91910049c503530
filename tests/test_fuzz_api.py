"""Fuzz the secured API as a real ``ingestro api`` process: no 5xx, no hang, no traceback, bounded memory.

tests/test_schemathesis.py holds every answer to what /openapi.json documents, for requests
the document describes. This test sends what no document describes: generated requests
(tests/hostile_requests.py) with any bytes in the path and query, junk and lying headers
(Authorization, Idempotency-Key, Content-Type, Content-Length, chunked framing), declarations
generated structurally and mutated from valid ones (JSON and TOML), and uploads valid,
mutated, gzip'd and multipart, to every route, with keys of every scope, of another tenant
and revoked. The API runs as its own process (``python -m ingestro api`` with keys, on
loopback), on the session's Redis and PostgreSQL, and must:

- answer every request, within ``ANSWER_S``, never with a 5xx, and every 4xx as problem+json
  (uvicorn's own 400 for what is not HTTP at all is the only plain-text answer);
- answer ``/healthz`` within a second all along (a concurrent task polls it);
- log no traceback and no error;
- end with its resident memory at most ``MEMORY_GROWTH`` above where it started.

The run is seeded (the same requests every time) and bounded: ``SECONDS`` of sending.
For a longer, random run (e.g. before a release), set ``INGESTRO_FUZZ_SECONDS``:

    INGESTRO_FUZZ_SECONDS=600 python -m pytest tests/test_fuzz_api.py --timeout 0
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from ingestro.database import create_pool, keys
from ingestro.database.keys import Scope
from ingestro.devtools.servers import RedisServer, free_port
from ingestro.processes import run_consumer
from ingestro.services.consumer_groups import CONSUMER_NAMES
from tests.hostile_requests import ROUTES, Answer, Keys, RawRequest, requests, send
from tests.stack import reset, stack_settings
from tests.test_processes import wait_until_ready

SECONDS = float(os.environ.get("INGESTRO_FUZZ_SECONDS", "40"))
RANDOM = "INGESTRO_FUZZ_SECONDS" in os.environ
#: Examples per hypothesis run: each starts from simple requests and grows them.
RUN = 200
#: Longest any request may take to be answered whole.
ANSWER_S = 10.0
#: Longest /healthz may take, while the fuzzing goes on.
HEALTHZ_S = 1.0
MEMORY_GROWTH = 256 * 1024 * 1024
#: A few rows valid, a few not: the job the generated requests read, beside ids that are no job.
SEED_CSV = b"email,first_name,last_name,signup_date\na@example.com,A,B,2024-01-05\nnot-an-email,=1+1,,x\n"


@attrs.define
class Api:
    """The ``ingestro api`` process under test."""

    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (the peak) of the process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")


@pytest.fixture
async def fuzzed(redis_server: RedisServer, migrated: str, tmp_path: Path) -> AsyncIterator[tuple[Api, Keys]]:
    """A secured API process with keys of each scope, another tenant's and a revoked one, and a completed job."""
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(redis_server.url)
    pool = await create_pool(migrated, min_size=1, max_size=2)
    await reset(redis, pool)
    tokens = {}
    for name, scope, tenant in (
        ("admin", Scope.ADMIN, "default"),
        ("read", Scope.READ, "default"),
        ("upload", Scope.UPLOAD, "default"),
        ("other_tenant", Scope.ADMIN, "tenb"),
        ("revoked", Scope.ADMIN, "default"),
    ):
        key, tokens[name] = await keys.create(pool, f"fuzz-{name}", scope, tenant)
        if name == "revoked":
            await keys.revoke(pool, key.key_id)
    env = {name: value for name, value in os.environ.items() if not name.startswith("INGESTRO_")} | {
        "INGESTRO_REDIS_URL": redis_server.url,
        "INGESTRO_DATABASE_URL": migrated,
        "INGESTRO_UPLOAD_DIR": str(tmp_path / "uploads"),
        # Limits are tested elsewhere (test_rate_limits.py); here they would only turn requests away.
        "INGESTRO_RATE_LIMIT": "100000",
        "INGESTRO_RATE_BURST": "100000",
        # Event streams the client left end within this, not the default 15 s.
        "INGESTRO_EVENTS_HEARTBEAT_S": "1",
        "INGESTRO_LOG_LEVEL": "WARNING",
    }
    port, log = free_port(), tmp_path / "api.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ingestro",
            "api",
            "--port",
            str(port),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
    api = Api(process, port, log)
    try:
        await asyncio.to_thread(wait_until_ready, api.url)
        job_ids = [await _seed_job(api, tokens["admin"], env, tmp_path), await _seed_job(api, tokens["upload"])]
        yield api, Keys(tokens, tuple(job_ids))
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        await reset(redis, pool)  # the tables of the datasets the run declared
        await pool.close()
        await redis.aclose()


async def _seed_job(api: Api, token: str, env: dict[str, str] | None = None, work: Path | None = None) -> str:
    """Upload ``SEED_CSV``; with ``env``, run the consumers until its job completed (with a rejected row)."""
    auth = {"authorization": f"Bearer {token}", "content-type": "text/csv"}
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        response = await client.post("/upload", content=SEED_CSV, headers=auth)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["job_id"]
        if env is None or work is None:
            return job_id
        settings = stack_settings(env["INGESTRO_REDIS_URL"], env["INGESTRO_DATABASE_URL"], work / "uploads")
        stop = asyncio.Event()
        consumers = [asyncio.create_task(run_consumer(name, settings, 0, stop)) for name in CONSUMER_NAMES]
        try:
            deadline = time.monotonic() + 60
            while (await client.get(f"/jobs/{job_id}", headers=auth)).json()["status"] != "completed":
                assert time.monotonic() < deadline, "the seed job did not complete"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.gather(*consumers)
    return job_id


def _wrong(request: RawRequest, answer: Answer) -> str | None:
    """What is wrong with ``answer`` to ``request``, if anything."""
    if answer.status is None:
        # Only a client that went away mid-body (a Content-Length that promised more) may go unanswered.
        return None if request.framing == "long" else "the connection closed without an answer"
    if answer.status >= 500:
        return f"{answer.status}: {answer.body[:500]!r}"
    if 400 <= answer.status < 500 and answer.headers.get("content-type") != "application/problem+json":
        if answer.body.startswith(b"Invalid HTTP request received."):
            return None  # uvicorn's answer to bytes that are not HTTP: they never reach the app
        return f"{answer.status} as {answer.headers.get('content-type')!r}, not problem+json: {answer.body[:300]!r}"
    return None


def fuzz(api: Api, known: Keys) -> tuple[Counter[tuple[str, str, int | None]], list[str]]:
    """Send generated requests for ``SECONDS``, in runs of ``RUN`` examples; return how many got which status
    on which route, and what went wrong. Run ``n`` is seeded with ``n`` (unless random): the same requests
    every time."""
    failures: list[str] = []
    answered: Counter[tuple[str, str, int | None]] = Counter()
    generated = requests(known)

    @settings(
        max_examples=RUN,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: every failure is reported as sent, and the run stays bounded
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        request = data.draw(generated)
        try:
            answer = send(request, api.port, ANSWER_S)
        except TimeoutError as error:
            failures.append(f"{request}\n  -> {error}")
            return
        answered[request.method, request.route, answer.status] += 1
        if (wrong := _wrong(request, answer)) is not None:
            failures.append(f"{request}\n  -> {wrong}")

    deadline = time.monotonic() + SECONDS
    for run in itertools.count():
        if time.monotonic() > deadline or len(failures) >= 20:
            break
        (check if RANDOM else seed(run)(check))()
    return answered, failures


#: The routes that read a request's body.
BODY_ROUTES = frozenset({("POST", "/upload"), ("PUT", "/datasets/{name}")})


async def _poll_healthz(api: Api, done: asyncio.Event, slow: list[str]) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=HEALTHZ_S) as client:
        while not done.is_set():
            started = time.monotonic()
            try:
                response = await client.get("/healthz")
                if response.status_code != 200:
                    slow.append(f"/healthz answered {response.status_code}")
            except httpx.HTTPError as error:
                slow.append(f"/healthz after {time.monotonic() - started:.2f} s: {error!r}")
            await asyncio.sleep(0.2)


def _logged_errors(api: Api) -> list[str]:
    """Every line the API logged at level error or above, or not as a JSON line (a bare traceback)."""
    logged = [line for line in api.log.read_text(errors="replace").splitlines() if line.strip()]
    return [line for line in logged if not line.startswith("{") or orjson.loads(line)["level"] in ("error", "critical")]


@pytest.mark.parametrize("route", ["/upload", "/jobs"])
async def test_a_malformed_chunked_body_is_a_400_and_no_traceback(fuzzed: tuple[Api, Keys], route: str) -> None:
    # Answered at once (401: no key) while the body is still arriving and broken: uvicorn's h11 protocol
    # answered 400, then crashed on the app's answer and logged a traceback. httptools drops the late answer.
    api, _ = fuzzed
    for _ in range(20):
        request = RawRequest("POST", route, route.encode(), ((b"content-type", b"text/csv"),), b"a,b\n", "bad-chunked")
        answer = await asyncio.to_thread(send, request, api.port, ANSWER_S)
        assert answer.status in (400, 401, 405), answer
    await asyncio.sleep(0.2)  # what the server logs after answering
    assert _logged_errors(api) == []


async def test_generated_requests_to_every_route_get_no_5xx_no_hang_no_traceback_and_bounded_memory(
    fuzzed: tuple[Api, Keys],
) -> None:
    api, known = fuzzed
    resident = api.memory("VmRSS")
    done, slow = asyncio.Event(), list[str]()
    poller = asyncio.create_task(_poll_healthz(api, done, slow))
    try:
        answered, failures = await asyncio.to_thread(fuzz, api, known)
    finally:
        done.set()
        await poller
    assert api.process.returncode is None, "the API process died"
    peak = api.memory("VmHWM")
    async with httpx.AsyncClient(base_url=api.url, timeout=5) as client:
        assert (await client.get("/readyz")).status_code == 200
    errors = _logged_errors(api)
    sent = sum(answered.values())
    assert failures == [], f"{len(failures)} of {sent} requests were answered wrong:\n\n" + "\n\n".join(failures)
    assert slow == [], "/healthz was slow or failed while fuzzing:\n" + "\n".join(slow)
    assert errors == [], "the API logged errors:\n" + "\n".join(errors[:20])
    # The requests reach past the first checks: every route answered some of them with success.
    succeeded = {(method, route) for method, route, status in answered if status is not None and status < 300}
    assert succeeded >= set(ROUTES), f"never a success on {sorted(set(ROUTES) - succeeded)}: {answered}"
    assert peak - resident < MEMORY_GROWTH, (
        f"resident memory grew from {resident >> 20} MiB to a peak of {peak >> 20} MiB"
    )
