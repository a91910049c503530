"""Background rounds run beside a consumer (stream and file retention): one loop for all of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ingestro.streams.outages import is_outage

log = logging.getLogger(__name__)


async def run_rounds(what: str, round_: Callable[[], Awaitable[None]], interval_s: float, stop: asyncio.Event) -> None:
    """Run ``round_`` every ``interval_s`` until ``stop`` is set; a round that fails is logged and skipped.

    Maintenance must never stop the consumer it runs beside: an outage skips the round
    quietly, anything else is logged with its traceback, and the next round comes as usual.
    """
    while not stop.is_set():
        try:
            await round_()
        except Exception as error:
            if is_outage(error):
                log.warning(f"{what} skips a round: a server is unreachable", extra={"error": str(error)})
            else:
                log.exception(f"{what} failed; trying again next round")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
