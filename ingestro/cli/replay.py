"""``ingestro replay data|errors|jobs|all [--allow-loss]``: rebuild projections, for people.

Progress goes to stderr while it runs; one line per projection replayed to stdout.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ingestro.config import Settings
from ingestro.streams.connections import redis_client
from projections.registry import PROJECTIONS
from projections.replay import ReplayRefused, replay


async def run(settings: Settings, which: str, allow_loss: bool, out: TextIO = sys.stdout) -> int:
    """Replay ``which`` (a projection, or ``all``: each in turn); exit status 1 when one was refused."""
    redis = redis_client(settings.redis_url, socket_timeout=30)
    try:
        for projection in PROJECTIONS if which == "all" else (which,):
            try:
                outcome = await replay(
                    settings.database_url, redis, projection, allow_loss=allow_loss, group_size=settings.group_size
                )
            except ReplayRefused as refused:
                print(f"ingestro: {refused}", file=sys.stderr)
                return 1
            entries = sum(outcome.entries.values())
            line = f"replayed {projection}: {entries:,} entries in {outcome.seconds:.1f} s, swapped in"
            if outcome.lost:
                line += (
                    f"; without {sum(outcome.lost.values())} trimmed batch(es) or fact(s) of"
                    f" {len(outcome.lost)} job(s) (--allow-loss)"
                )
            out.write(line + "\n")
        return 0
    finally:
        await redis.aclose()
