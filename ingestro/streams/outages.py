"""Tell an outage (retry in place, count nothing) from a failure of the entry itself.

An outage is the infrastructure's, and passes by itself: a server unreachable, timing out,
starting or stopping, or Redis refusing writes (full at ``maxmemory`` under ``noeviction``,
a replica made read-only by a failover, snapshots failing with ``stop-writes-on-bgsave-error``), a Redis
Cluster failing over (``CLUSTERDOWN``, ``TRYAGAIN``, MOVED/ASK the client could not follow, a slot no
node serves yet) or a write its replicas did not confirm in time (``NotReplicated``).
A consumer waits it out on the same entry; the API answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import redis.exceptions

from ingestro.streams.replication import NotReplicated

log = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_POSTGRES = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


#: How asyncpg's own InterfaceError messages end for a connection the server dropped
#: ("cannot call Transaction.__aexit__(): the underlying connection is closed"), or a
#: pool closing under a stopping process. Its subclasses (DataError: a bad value,
#: which the message may quote) are never outages.
_CLOSED = ("connection is closed", "pool is closing", "pool is closed")
#: How asyncpg's InternalClientError begins for a connection whose protocol the lost
#: server left mid-operation, met when the pool resets it on release.
_BROKEN_PROTOCOL = ("cannot switch to state", "not connected")
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
    }
)


def _network_trouble(error: OSError) -> bool:
    """A socket error, not a file error: a missing or unreadable file is no outage."""
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    if error.errno in _NETWORK_ERRNOS:
        return True
    # asyncio's connect to several addresses (e.g. localhost) raises a plain OSError.
    return error.errno is None and "Connect call failed" in str(error)


def refuses_writes(error: BaseException) -> bool:
    """Whether ``error`` is Redis refusing a write for now: full (``OOM``), read-only, or ``MISCONF``."""
    if isinstance(error, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)):
        return True
    return isinstance(error, redis.exceptions.ResponseError) and str(error).startswith("MISCONF")


def is_outage(error: BaseException) -> bool:
    """True when ``error`` says a server was unreachable or refused writes, or the work should simply be retried.

    Such errors never count toward dead-lettering: the entry is retried once the
    server answers again. A value the database refuses is not an outage. Nor is an
    error raised while handling an outage, such as a transaction's rollback on the
    connection that just broke: the outage it hides decides.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if _is_outage_itself(cause):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _is_outage_itself(error: BaseException) -> bool:
    if type(error) is asyncpg.InterfaceError:
        return str(error).endswith(_CLOSED)
    if isinstance(error, asyncpg.InternalClientError):
        return str(error).startswith(_BROKEN_PROTOCOL)
    if isinstance(error, OSError):
        return _network_trouble(error)
    if refuses_writes(error):
        return True
    return isinstance(
        error,
        (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError,
            redis.exceptions.ClusterDownError,
            redis.exceptions.TryAgainError,
            redis.exceptions.AskError,
            redis.exceptions.SlotNotCoveredError,
            NotReplicated,
            *_TRANSIENT_POSTGRES,
        ),
    )


async def until_answered(step: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``step`` until it returns, waiting out outages (0.1 s, doubling up to 5 s, each logged as ``what``); any
    other error is raised. For a process's start-up, e.g. a Redis Cluster whose failed master is not yet replaced."""
    delay = 0.1
    while True:
        try:
            return await step()
        except Exception as error:
            if not is_outage(error):
                raise
            log.warning(
                "server unreachable; retrying", extra={"step": what, "error": f"{type(error).__name__}: {error}"}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
