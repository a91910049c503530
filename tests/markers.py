"""Markers by what a test needs, so a developer runs the fast ones alone: ``make test ARGS="-m pure"``.

- ``pure``: no server; pure functions, files, parsers, the CLI's own checks.
- ``server``: a real Redis, PostgreSQL or S3 server (the session's, or one the test starts).
- ``system``: the whole stack or several processes: separate processes, chaos, schemathesis, bench, the
  installed package.
- ``slow``: takes seconds or more on its own (``-m "not slow"`` leaves these out).

A test is ``server`` when it uses one of the server fixtures (directly or through another fixture),
else ``pure``, unless it says ``server`` or ``system`` itself (``pytestmark``, or ``pytest.param(...,
marks=...)`` for a fixture parameter). A ``pure`` test that starts a server fails, naming the marker to use.
Registered in pyproject.toml ([tool.pytest.ini_options] markers; the suite runs with --strict-markers).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

import pytest

#: Each test has exactly one of these.
CATEGORIES = ("pure", "server", "system")
#: The fixtures that start a server; every other server fixture (redis, migrated, stack, ...) uses one.
SERVER_FIXTURES = frozenset({"redis_server", "redis_cluster", "postgres_server", "s3_endpoint"})
#: What a pure test must not start (as the program or any argument: runuser/setpriv wrap postgres as root).
SERVER_PROGRAMS = frozenset({"redis-server", "postgres", "initdb", "pg_ctl", "moto.server"})


def category_of(item: pytest.Item) -> str:
    """The test's category: the one it states, else ``server`` if it uses a server fixture, else ``pure``."""
    stated = {mark.name for mark in item.iter_markers() if mark.name in CATEGORIES}
    if len(stated) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked {' and '.join(sorted(stated))}: choose one")
    if stated:
        return stated.pop()
    return "server" if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) else "pure"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        category = category_of(item)
        if not item.get_closest_marker(category):
            item.add_marker(category)


@pytest.fixture(autouse=True)
def _pure_starts_no_server(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a ``pure`` test, starting a server process fails: the test is mis-marked."""
    if request.node.get_closest_marker("pure") is None:
        yield
        return
    started = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        argv = [args] if isinstance(args, (str, bytes, PurePath)) else list(args)
        names = {PurePath(str(arg)).name for arg in argv}
        if names & SERVER_PROGRAMS:
            pytest.fail(f"a test marked pure started {sorted(names & SERVER_PROGRAMS)}: mark it server or system")
        started(self, args, *rest, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", guarded)
        yield
