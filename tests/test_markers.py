"""The markers of tests/markers.py: every test has one category, and a pure one cannot start a server."""

from __future__ import annotations

import subprocess

import pytest

from tests.markers import CATEGORIES, SERVER_FIXTURES


def test_every_collected_test_has_exactly_one_category_and_server_fixtures_are_never_pure(
    request: pytest.FixtureRequest,
) -> None:
    items = request.session.items
    assert request.node in items
    for item in items:
        categories = [name for name in CATEGORIES if item.get_closest_marker(name)]
        assert len(categories) == 1, (item.nodeid, categories)
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            assert categories != ["pure"], item.nodeid


def test_this_test_is_pure(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("pure") is not None


@pytest.mark.parametrize("argv", [["redis-server", "--version"], ["/usr/lib/postgresql/16/bin/initdb", "--help"]])
def test_a_pure_test_that_starts_a_server_fails_saying_how_to_mark_it(argv: list[str]) -> None:
    with pytest.raises(pytest.fail.Exception, match="mark it server or system"):
        subprocess.Popen(argv)


def test_a_pure_test_may_still_run_other_programs() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0
