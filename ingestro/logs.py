"""Logging: one JSON object per line on stderr, or readable lines for a person at a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
#: Fields of the work in hand (e.g. the stream entry being handled), added to every record logged meanwhile.
_BOUND: ContextVar[dict[str, Any]] = ContextVar("ingestro_log_fields", default={})  # noqa: B039 - never mutated: bound() sets a new dict


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Log ``fields`` with every record logged inside the block, by this task; a record's own extras win."""
    token = _BOUND.set(_BOUND.get() | fields)
    try:
        yield
    finally:
        _BOUND.reset(token)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return _BOUND.get() | {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{at} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f"  [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", human: bool | None = None) -> None:
    """Log to stderr at ``level``; human-readable when ``human`` (default: stderr is a terminal)."""
    handler = logging.StreamHandler(sys.stderr)
    readable = sys.stderr.isatty() if human is None else human
    handler.setFormatter(HumanFormatter() if readable else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
