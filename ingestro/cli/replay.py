"""``ingestro replay data|errors|jobs|all [--allow-loss]``: rebuild projections, for people.

Progress goes to stderr while it runs; one line per projection replayed to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from ingestro.cli._parsers import Subcommands, add_command
from ingestro.cli.choices import REPLAYABLE
from ingestro.config import Settings
from ingestro.streams.connections import redis_client


def add_parser(commands: Subcommands) -> None:
    replay_parser = add_command(
        commands,
        "replay",
        "rebuild a projection's tables from the retained stream events and swap them in",
        "Rebuild into shadow tables with the projection's own code, then, under a short lock of the live tables, "
        "catch up to the stream head and swap them in atomically; live ingestion goes on. Refused when the live "
        "tables hold batches whose events retention trimmed (run `ingestro reparse` first). Progress on stderr.",
        command,
    )
    replay_parser.add_argument("projection", choices=REPLAYABLE, help="which projection (all: each)")
    replay_parser.add_argument(
        "--allow-loss", action="store_true", help="swap even when trimmed events leave batches or jobs out"
    )


def command(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run(settings, args.projection, args.allow_loss))


async def run(settings: Settings, which: str, allow_loss: bool, out: TextIO = sys.stdout) -> int:
    """Replay ``which`` (a projection, or ``all``: each in turn); exit status 1 when one was refused."""
    # Imported here, not at the top: it loads every consumer and projection (see ingestro.cli.choices).
    from projections.registry import PROJECTIONS
    from projections.replay import ReplayRefused, replay

    redis = redis_client(settings, socket_timeout=30)
    try:
        for projection in PROJECTIONS if which == "all" else (which,):
            try:
                outcome = await replay(
                    settings.database_url,
                    redis,
                    projection,
                    allow_loss=allow_loss,
                    group_size=settings.group_size,
                    partitions=settings.partitions,
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
