"""Tell an outage (retry in place, count nothing) from a failure of the entry itself."""

from __future__ import annotations

import errno
import socket

import asyncpg
import redis.exceptions

_TRANSIENT_POSTGRES = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


_NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
     errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH, errno.EHOSTDOWN}
)


def _network_trouble(error: OSError) -> bool:
    """A socket error, not a file error: a missing or unreadable file is no outage."""
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    if error.errno in _NETWORK_ERRNOS:
        return True
    # asyncio's connect to several addresses (e.g. localhost) raises a plain OSError.
    return error.errno is None and "Connect call failed" in str(error)


def is_outage(error: BaseException) -> bool:
    """True when ``error`` says a server was unreachable or the work should simply be retried.

    Such errors never count toward dead-lettering: the entry is retried once the
    server answers again. A value the database refuses is not an outage.
    """
    if isinstance(error, asyncpg.InterfaceError):
        return "closed" in str(error)  # a pooled connection the server dropped; other misuse is a bug
    if isinstance(error, OSError):
        return _network_trouble(error)
    return isinstance(
        error,
        (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError,
            *_TRANSIENT_POSTGRES,
        ),
    )
