"""Background rounds beside a consumer: a failing round is logged and skipped, never the end of the loop."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from ingestro.streams.maintenance import run_rounds


async def test_rounds_go_on_after_a_failure_and_an_outage_until_stopped(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    outcomes: list[BaseException | None] = [ValueError("a bug"), redis.exceptions.ConnectionError("down"), None]
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        outcome = outcomes[min(rounds, len(outcomes)) - 1]
        if outcome is None:
            stop.set()
        else:
            raise outcome

    await asyncio.wait_for(run_rounds("test upkeep", round_, 0.01, stop), 5)

    assert rounds == 3
    messages = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert ("ERROR", "test upkeep failed; trying again next round") in messages
    assert ("WARNING", "test upkeep skips a round: a server is unreachable") in messages
