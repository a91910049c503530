"""Chaos: the whole system as real processes, killed at random while it ingests; then the exact end state.

The API and several processes of each consumer run as ``python -m ingestro``
processes on a private redis-server and PostgreSQL. While a sample file is
ingested, consumer processes are SIGKILLed at random moments and started again
after a random pause (a short one: the same consumer takes back its own pending
entries; a long one: the others reclaim them), the parser is killed in the
middle of the file, redis-server is restarted once (gracefully: with
``appendfsync everysec`` a SIGKILL could lose the last second of writes, which no
consumer can make up for; on a Redis Cluster with replicas, ``--redis-cluster``, a master
is SIGKILLed instead, and the publishes' WAIT makes that lose nothing) and PostgreSQL
is crashed (SIGKILL) and started once.
Then the end state must be exact: the table holds exactly the distinct valid
rows, ``validation_errors`` exactly the invalid ones, every job is completed
with exact counts, no entry is pending in any group, and the DLQ is empty.

The random schedule comes from a seed, printed first: the same seed makes the
same choices (when they happen depends on the machine's speed). The suite runs
one 200,000-row file (tests/test_chaos.py); a longer run, uploading the file
again and again for the given minutes:

    python -m tests.chaos --rows 1000000 --minutes 5 [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx
import orjson
import redis.asyncio as aioredis

from ingestro.config import Settings
from ingestro.database import create_pool
from ingestro.database.schema import prepare_database
from ingestro.devtools.samples import Expected, sample_rows, write_sample_file
from ingestro.devtools.servers import PostgresServer, RedisClusterServers, RedisServer, free_port
from ingestro.devtools.supervisor import Child, stop_all
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.connections import redis_client
from ingestro.streams.names import DLQ_STREAM, FILES_STREAM, JOB_EVENTS_STREAM, PARSER_GROUP

#: Processes of every consumer group (tests/test_chaos.py holds it to the consumer groups there are).
COPIES = {"parser": 2, "fetcher": 1, "data": 3, "errors": 2, "jobs": 2, "notifications": 1}
BATCH_SIZE = 500


@attrs.frozen
class Plan:
    rows: int = 200_000
    #: Keep uploading the file again until this many minutes have passed; 0: upload it once.
    minutes: float = 0
    seed: int = attrs.field(factory=lambda: random.randrange(1_000_000))
    visibility_timeout_s: float = 3
    #: Seconds between two random kills, drawn uniformly from this range.
    kill_every_s: tuple[float, float] = (0.3, 1.5)
    #: Seconds a killed process stays down, drawn uniformly: below the visibility timeout it
    #: takes back its own entries; above it the others reclaim them.
    down_for_s: tuple[float, float] = (0.0, 5.0)
    #: Longest the whole run may take before it is declared stuck.
    deadline_s: float = 240
    #: Run on a 3-master Redis Cluster with 2 replicas each (publishes WAIT for one), whose master of the
    #: ``{core}`` keys is SIGKILLed (and stays down: a replica takes over) instead of the graceful restart.
    redis_cluster: bool = False


@attrs.define
class Chaos:
    """One run: servers, processes, the schedule, and what happened."""

    plan: Plan
    work: Path
    say: Callable[[str], None]
    rng: random.Random
    redis_server: RedisServer | RedisClusterServers
    postgres: PostgresServer
    api_url: str = ""
    api: Child | None = None
    consumers: list[Child] = attrs.field(factory=list)
    restarts: list[tuple[float, Child]] = attrs.field(factory=list)
    started: float = attrs.field(factory=time.monotonic)
    kills: int = 0
    #: Processes that exited without being killed: a consumer should survive anything thrown at it here.
    exits: list[str] = attrs.field(factory=list)

    def log(self, message: str) -> None:
        self.say(f"[chaos {time.monotonic() - self.started:7.2f}s] {message}")

    def environment(self) -> dict[str, str]:
        """The settings of every process (they inherit no other INGESTRO_* variable: the supervisor's rule)."""
        cluster = (
            {"INGESTRO_REDIS_MODE": "cluster", "INGESTRO_REDIS_WAIT_REPLICAS": "1"} if self.plan.redis_cluster else {}
        )
        return cluster | {
            "INGESTRO_REDIS_URL": self.redis_server.url,
            "INGESTRO_DATABASE_URL": self.postgres.url,
            "INGESTRO_UPLOAD_DIR": str(self.work / "uploads"),
            "INGESTRO_VISIBILITY_TIMEOUT_S": str(self.plan.visibility_timeout_s),
            "INGESTRO_BLOCK_MS": "200",
            "INGESTRO_BATCH_SIZE": str(BATCH_SIZE),
            "INGESTRO_LOG_LEVEL": "WARNING",
        }

    def start_processes(self) -> None:
        command = [sys.executable, "-m", "ingestro"]
        env = self.environment()
        logs = self.work / "logs"
        logs.mkdir()
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api = Child("api", [*command, "api", "--port", str(port), "--insecure"], env, logs / "api.log")
        self.api.start()
        for group, copies in COPIES.items():
            for slot in range(copies):
                argv = [*command, "consume", group, "--slot", str(slot)]
                self.consumers.append(Child(f"{group}-{slot}", argv, env, logs / f"{group}-{slot}.log"))
        for process in self.consumers:
            process.start()

    def stop_processes(self) -> None:
        stop_all([*self.consumers, *([self.api] if self.api else [])], signal.SIGTERM, grace_s=20)

    # ------------------------------------------------------------------ mischief

    def kill(self, process: Child, why: str) -> None:
        process.kill()
        self.kills += 1
        down = self.rng.uniform(*self.plan.down_for_s)
        self.restarts.append((time.monotonic() + down, process))
        self.log(f"SIGKILL {process.label} ({why}); back in {down:.1f}s")

    def restart_due(self, everything: bool = False) -> None:
        """Start again the killed processes whose time has come, and any that exited on its own."""
        now = time.monotonic()
        for entry in [entry for entry in self.restarts if everything or entry[0] <= now]:
            self.restarts.remove(entry)
            entry[1].start()
            self.log(f"started {entry[1].label} again")
        down = {process.label for _, process in self.restarts}
        for process in [*self.consumers, *([self.api] if self.api else [])]:
            if not process.alive() and process.label not in down:
                self.exits.append(f"{process.label} (code {process.returncode})")
                self.log(f"{process.label} exited by itself with code {process.returncode}; starting it again")
                process.start()

    def kill_at_random(self, spare: str | None) -> None:
        """Kill a live consumer process, sparing ``spare`` (the parser in the middle of a file)."""
        candidates = [p for p in self.consumers if p.alive() and p.label != spare]
        if candidates:
            self.kill(self.rng.choice(candidates), "at random")

    async def parser_at_work(self, redis: aioredis.Redis) -> str | None:
        """The label of the parser process holding a file, if one does."""
        try:
            pending: Any = await redis.xpending_range(FILES_STREAM, PARSER_GROUP, "-", "+", 1)
        except Exception:  # redis restarting, or no group yet
            return None
        if not pending:
            return None
        slot = pending[0]["consumer"].decode().rsplit("-", 1)[1]
        return f"{PARSER_GROUP}-{slot}"

    def restart_redis(self, redis: aioredis.Redis) -> None:
        if isinstance(self.redis_server, RedisClusterServers):
            node: Any = redis.get_node_from_key(JOB_EVENTS_STREAM)  # type: ignore[attr-defined]
            master = next(server for server in self.redis_server.nodes if server.port == node.port)
            self.log(f"SIGKILL the Redis Cluster master {master.port} of the {{core}} keys; its replica takes over")
            master.kill()
            return
        self.log("restarting redis-server (graceful: the AOF keeps every write)")
        self.redis_server.restart()
        self.log("redis-server is back")

    def crash_postgres(self) -> None:
        self.log("SIGKILL PostgreSQL, then start it again (it replays its WAL)")
        self.postgres.kill()
        self.postgres.start()
        self.log("PostgreSQL is back")


async def _upload(api_url: str, path: Path, attempts: int = 10) -> str:
    """Upload as a client should: again after a 503 (the API met a connection the restarted Redis dropped)."""

    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                yield chunk

    async with httpx.AsyncClient(timeout=120) as client:
        for _ in range(attempts):
            response = await client.post(
                f"{api_url}/upload",
                content=chunks(),
                headers={"content-type": "text/csv"},
                params={"filename": path.name},
            )
            if response.status_code != 503:
                break
            await asyncio.sleep(1)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def _job(api_url: str, job_id: str) -> dict[str, Any] | None:
    """The job as the API shows it; None while the API cannot say (PostgreSQL down)."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{api_url}/jobs/{job_id}")
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


async def _wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} never became ready"
            await asyncio.sleep(0.1)


async def _applied_share(pool: asyncpg.Pool, job_id: str, batches: int) -> float | None:
    try:
        applied = await pool.fetchval(
            "SELECT count(*) FROM applied_batches WHERE projection = 'data' AND job_id = $1", job_id, timeout=2
        )
    except Exception:  # PostgreSQL is down: no news
        return None
    return float(applied) / batches


async def _quiet(redis: aioredis.Redis, timeout: float) -> None:
    """Wait until every group read every entry of its streams and holds none pending."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 5:
        busy = []
        for group, streams in group_stream_keys(Settings.from_env({}).partitions).items():
            for stream in streams:
                if not await redis.exists(stream):
                    continue
                last = (await redis.xinfo_stream(stream))["last-generated-id"]
                for info in await redis.xinfo_groups(stream):
                    if info["name"].decode() == group and (info["pending"] or info["last-delivered-id"] != last):
                        busy.append(f"{group}@{stream}: {info['pending']} pending")
        quiet = 0 if busy else quiet + 1
        assert time.monotonic() < deadline, f"consumers did not go idle: {busy}"
        await asyncio.sleep(0.2)


def distinct_valid_ids(rows: int, seed: int) -> set[str]:
    """The ``id`` of every distinct valid row of the sample: duplicates repeat an earlier row, id included."""
    return {row["id"] for row, kind in sample_rows(rows, seed) if kind == "valid"}


async def _verify(
    pool: asyncpg.Pool, redis: aioredis.Redis, jobs: list[dict[str, Any]], expected: Expected, ids: set[str]
) -> None:
    for job in jobs:
        assert job["status"] == "completed", job
        assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (
            expected.rows,
            expected.valid,
            expected.invalid,
        ), job
        assert job["rows_inserted"] + job["rows_duplicate"] == expected.valid, job
        lines = await pool.fetch("SELECT line FROM validation_errors WHERE job_id = $1 ORDER BY line", job["job_id"])
        assert tuple(row["line"] for row in lines) == expected.invalid_lines, f"validation errors of {job['job_id']}"
    assert sum(job["rows_inserted"] for job in jobs) == expected.distinct
    stored = [row["id"] for row in await pool.fetch("SELECT id FROM contacts")]
    assert len(stored) == expected.distinct, "contacts holds a row too many or too few"
    assert set(stored) == ids, "contacts does not hold exactly the distinct valid rows"
    assert await pool.fetchval("SELECT count(*) FROM validation_errors") == expected.invalid * len(jobs)
    for group, streams in group_stream_keys(Settings.from_env({}).partitions).items():
        for stream in streams:
            if await redis.exists(stream):
                summary: Any = await redis.xpending(stream, group)
                assert summary["pending"] == 0, f"{group} still has entries pending on {stream}"
    assert await redis.xlen(DLQ_STREAM) == 0, "something was dead-lettered"


async def run(plan: Plan, say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the chaos ``plan``; return the finished jobs, or raise AssertionError saying what went wrong."""
    say(f"chaos seed {plan.seed} ({plan.rows} rows, {plan.minutes or 'one upload'} minutes)")
    rng = random.Random(plan.seed)
    with tempfile.TemporaryDirectory(prefix="ingestro-chaos-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # as root, PostgreSQL runs as another user, who must reach its directory
        sample = work / "sample.csv"
        expected = write_sample_file(sample, "csv", plan.rows, seed=plan.seed)
        redis_servers = (
            RedisClusterServers(work / "redis", masters=3, replicas=2, node_timeout_ms=1000)
            if plan.redis_cluster
            else RedisServer(work / "redis")
        )
        with redis_servers as redis_server, PostgresServer(work / "postgres") as postgres:
            await prepare_database(postgres.url)
            chaos = Chaos(plan, work, say, rng, redis_server, postgres)
            mode = "cluster" if plan.redis_cluster else "single"
            redis = redis_client(Settings.from_env({}, redis_url=redis_server.url, redis_mode=mode), socket_timeout=10)
            pool = await create_pool(postgres.url, min_size=0, max_size=2)
            try:
                chaos.start_processes()
                await _wait_ready(chaos.api_url)
                jobs = await _ingest_under_fire(chaos, redis, pool, sample, expected)
                chaos.restart_due(everything=True)
                await _quiet(redis, timeout=60)
                finished = [job for job in [await _job(chaos.api_url, job_id) for job_id in jobs] if job]
                assert len(finished) == len(jobs), "the API could not show every job"
                await _verify(pool, redis, finished, expected, distinct_valid_ids(plan.rows, plan.seed))
                # Kills and restarts are no entry's fault: none may count as a failure of its handler,
                # nor make a process give up.
                assert not (failed := _handler_failures(work / "logs")), f"handlers failed: {failed}"
                assert not chaos.exits, f"processes exited by themselves: {chaos.exits}"
                chaos.log(f"exact: {len(jobs)} job(s), {chaos.kills} kills; seed {plan.seed}")
                return finished
            except BaseException:
                _tell_logs(work / "logs", say)
                raise
            finally:
                chaos.stop_processes()
                await pool.close()
                await redis.aclose()


async def _ingest_under_fire(
    chaos: Chaos, redis: aioredis.Redis, pool: asyncpg.Pool, sample: Path, expected: Expected
) -> list[str]:
    """Upload (again and again for ``minutes``) and wreak havoc until the last job is completed."""
    plan, rng = chaos.plan, chaos.rng
    batches = max(math.ceil(expected.valid / BATCH_SIZE), 1)
    # The big events of the first job happen once, at shares of its batches applied.
    parser_crash_at, redis_restart_at = rng.uniform(0.05, 0.2), rng.uniform(0.25, 0.4)
    postgres_crash_at = rng.uniform(0.5, 0.7)
    parser_crashed = redis_restarted = postgres_crashed = False
    next_kill = time.monotonic() + rng.uniform(*plan.kill_every_s)
    end_uploads = time.monotonic() + plan.minutes * 60
    deadline = time.monotonic() + plan.deadline_s + plan.minutes * 60
    jobs = [await _upload(chaos.api_url, sample)]
    chaos.log(f"uploaded job {jobs[-1]}")
    share = 0.0
    while True:
        assert time.monotonic() < deadline, f"not done in time: {await _job(chaos.api_url, jobs[-1])}"
        await asyncio.sleep(0.1)
        chaos.restart_due()
        share = await _applied_share(pool, jobs[0], batches) or share
        parser = await chaos.parser_at_work(redis)
        if not parser_crashed and share >= parser_crash_at and parser is not None:
            parser_crashed = True
            chaos.kill(next(p for p in chaos.consumers if p.label == parser), "in the middle of the file")
        elif not redis_restarted and share >= redis_restart_at:
            redis_restarted = True
            chaos.restart_redis(redis)
        elif not postgres_crashed and share >= postgres_crash_at:
            postgres_crashed = True
            chaos.crash_postgres()
        elif time.monotonic() >= next_kill:
            # The parser at work is spared: each crash starts its file over, counting a delivery.
            chaos.kill_at_random(spare=parser)
            next_kill = time.monotonic() + rng.uniform(*plan.kill_every_s)
        job = await _job(chaos.api_url, jobs[-1])
        if job is None or job["status"] in ("pending", "processing"):
            continue
        assert job["status"] == "completed", job  # stalled: something was dead-lettered
        chaos.log(f"job {jobs[-1]} completed")
        if time.monotonic() >= end_uploads and parser_crashed and redis_restarted and postgres_crashed:
            return jobs
        jobs.append(await _upload(chaos.api_url, sample))
        chaos.log(f"uploaded job {jobs[-1]}")


def _handler_failures(logs: Path) -> list[str]:
    """The errors the consumers counted against an entry, from their JSON logs."""
    failures = []
    for path in logs.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if '"handler failed' in line:
                failures.append(f"{path.stem}: {orjson.loads(line).get('error')}")
    return failures


def _tell_logs(logs: Path, say: Callable[[str], None], lines: int = 15) -> None:
    for path in sorted(logs.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        if tail:
            say(f"--- {path.name} (last {len(tail)} lines)\n" + "\n".join(tail))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the sample file (default: %(default)s)")
    parser.add_argument(
        "--minutes", type=float, default=5, help="keep uploading it for this long (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random schedule (default: a random one, printed)")
    parser.add_argument(
        "--redis-cluster", action="store_true", help="on a 3-master Redis Cluster with replicas, a master killed"
    )
    args = parser.parse_args(argv)
    seed = {"seed": args.seed} if args.seed is not None else {}
    plan = Plan(rows=args.rows, minutes=args.minutes, redis_cluster=args.redis_cluster, **seed)
    try:
        asyncio.run(run(plan, lambda text: print(text, flush=True)))
    except AssertionError as failure:
        print(f"FAILED (seed {plan.seed}): {failure}", file=sys.stderr)
        return 1
    print(f"OK (seed {plan.seed}) on {socket.gethostname()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
