"""Logs: one JSON object per line, with the entry being handled on every record logged meanwhile."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from ingestro.logs import JsonFormatter
from ingestro.processes import with_log_context
from ingestro.streams.runtime import Entry


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


async def test_a_record_logged_while_handling_an_entry_names_its_stream_group_and_id(lines: io.StringIO) -> None:
    logger = logging.getLogger("tests.logs")

    async def handler(entry: Entry) -> None:
        logger.info("parsing", extra={"job_id": "j-1"})

    await with_log_context("parser", handler)(Entry("ingestro:files", "7-0", {}))
    logger.info("idle")

    handled, idle = (orjson.loads(line) for line in lines.getvalue().splitlines())
    assert set(handled) == {"time", "level", "logger", "message", "job_id", "stream", "group", "entry_id"}
    assert (handled["level"], handled["logger"], handled["message"]) == ("info", "tests.logs", "parsing")
    assert (handled["job_id"], handled["stream"], handled["group"], handled["entry_id"]) == (
        "j-1",
        "ingestro:files",
        "parser",
        "7-0",
    )
    assert set(idle) == {"time", "level", "logger", "message"}
