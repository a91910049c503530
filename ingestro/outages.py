"""Tell an outage (retry in place, count nothing) from a failure of the entry itself."""

from __future__ import annotations

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


def is_outage(error: BaseException) -> bool:
    """True when ``error`` says a server was unreachable or the work should simply be retried.

    Such errors never count toward dead-lettering: the entry is retried once the
    server answers again. A value the database refuses is not an outage.
    """
    if isinstance(error, asyncpg.InterfaceError):
        return "closed" in str(error)  # a pooled connection the server dropped; other misuse is a bug
    return isinstance(
        error,
        (
            OSError,  # refused or reset connections, timeouts (TimeoutError is an OSError)
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError,
            *_TRANSIENT_POSTGRES,
        ),
    )
