"""Whatever dies mid-file or mid-batch, the end state is exactly what it would have been without failures.

The run itself is tests/chaos.py: real processes, random SIGKILLs, a redis-server
restart and a PostgreSQL crash while a 200,000-row file is ingested, then ingested
again and again for half a minute; and on a Redis Cluster with replicas, a master SIGKILLed instead of the
restart, while a 60,000-row file is ingested once. Its seed is printed (shown when the test
fails); CHAOS_SEED=N replays a schedule.
"""

from __future__ import annotations

import os
import random

import pytest

from ingestro.services.consumer_groups import CONSUMER_NAMES
from tests import chaos

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("redis_mode", "rows", "minutes"),
    # On the cluster (9 Redis nodes beside the processes on the same cores) one smaller file, to keep the suite short.
    [("single", 200_000, 0.5), ("cluster", 60_000, 0)],
)
async def test_kills_and_server_restarts_during_an_ingestion_change_nothing_in_the_end_state(
    redis_mode: str, rows: int, minutes: float
) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
    print(f"chaos seed {seed} (replay with CHAOS_SEED={seed})")
    plan = chaos.Plan(rows=rows, minutes=minutes, seed=seed, deadline_s=150, redis_cluster=redis_mode == "cluster")
    jobs = await chaos.run(plan)
    assert jobs and all(job["status"] == "completed" for job in jobs)


def test_chaos_runs_every_consumer_group() -> None:
    assert set(chaos.COPIES) == set(CONSUMER_NAMES)
