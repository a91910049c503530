"""Which errors are outages (retried in place, never dead-lettered) and which are failures."""

from __future__ import annotations

import asyncpg
import pytest
import redis.exceptions

from ingestro.outages import is_outage


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432)"),
        redis.exceptions.ConnectionError("Error 111 connecting"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.InterfaceError("connection is closed"),
    ],
)
def test_unreachable_servers_are_outages(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory"),
        PermissionError(13, "Permission denied"),
        ValueError("bad value"),
        asyncpg.NumericValueOutOfRangeError("value out of range"),
        asyncpg.NotNullViolationError("null value"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        redis.exceptions.ResponseError("WRONGTYPE"),
    ],
)
def test_errors_of_the_entry_itself_are_not_outages(error: BaseException) -> None:
    assert not is_outage(error)
