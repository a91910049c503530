"""Which errors are outages (retried in place, never dead-lettered) and which are failures."""

from __future__ import annotations

import asyncpg
import pytest
import redis.exceptions

from ingestro.streams.outages import is_outage


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
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        # The pool resetting, on release, a connection the crashed server left mid-operation.
        asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
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
        # A value in the message must not pass for a dropped connection.
        asyncpg.exceptions.DataError("invalid input for query argument $1: 'connection is closed' (expected int)"),
        redis.exceptions.ResponseError("WRONGTYPE"),
    ],
)
def test_errors_of_the_entry_itself_are_not_outages(error: BaseException) -> None:
    assert not is_outage(error)


def _raised_while_handling(error: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise error
        except BaseException:
            raise outer  # noqa: B904 - as a rollback in a context manager's exit does
    except BaseException as raised:
        return raised


def test_an_error_raised_while_handling_an_outage_is_the_outage() -> None:
    """A PostgreSQL crash mid-transaction: the rollback fails too, and its error hides the first."""
    lost = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    rollback = asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed")
    assert is_outage(_raised_while_handling(lost, rollback))
    assert is_outage(_raised_while_handling(lost, KeyError("a bug in the cleanup")))


def test_an_outage_while_handling_a_failure_is_still_an_outage_and_a_failure_alone_is_not() -> None:
    refused = asyncpg.CheckViolationError("new row violates check constraint")
    assert is_outage(_raised_while_handling(refused, asyncpg.InterfaceError("connection is closed")))
    assert not is_outage(_raised_while_handling(refused, ValueError("bad value")))
