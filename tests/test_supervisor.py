"""The one supervisor of child processes: real children, started, stopped, killed, and what they inherit."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest

from ingestro.devtools.supervisor import Child, child_environment, stop_all

#: A child that says it is ready (a line on stdout, in its log), then sleeps until ended.
SLEEPER = "import sys, time; print('ready', flush=True); time.sleep(60)"
#: The same, ignoring SIGTERM.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
)


def started(tmp_path: Path, code: str, label: str = "child") -> Child:
    child = Child(label, [sys.executable, "-c", code], log_path=tmp_path / f"{label}.log")
    child.start()
    deadline = time.monotonic() + 10
    while "ready" not in child.output():
        assert child.alive() and time.monotonic() < deadline, child.output()
        time.sleep(0.01)
    return child


def test_a_child_is_stopped_by_sigterm_and_reports_its_exit(tmp_path: Path) -> None:
    child = started(tmp_path, SLEEPER)
    assert child.alive() and child.pid is not None
    assert os.getpgid(child.pid) == child.pid  # the leader of its own group (its own session)
    assert child.stop(grace_s=10) == -signal.SIGTERM
    assert not child.alive()
    assert child.stop() == -signal.SIGTERM  # a no-op once ended


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    child = started(tmp_path, STUBBORN)
    began = time.monotonic()
    assert child.stop(signal.SIGTERM, grace_s=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - began < 5


def test_a_frozen_child_is_stopped_too(tmp_path: Path) -> None:
    frozen, stubborn = started(tmp_path, SLEEPER, "frozen"), started(tmp_path, STUBBORN, "stubborn")
    try:
        for child in (frozen, stubborn):
            child.send(signal.SIGSTOP)  # as a chaos run may freeze a process
        # A fatal signal ends a stopped process (on a loaded machine the kill after the grace may come first).
        assert frozen.stop(grace_s=10) in (-signal.SIGTERM, -signal.SIGKILL)
        assert stubborn.stop(grace_s=0.3) == -signal.SIGKILL
        assert not frozen.alive() and not stubborn.alive()
    finally:
        for child in (frozen, stubborn):
            child.kill()


def test_stop_all_gives_every_child_one_grace_period(tmp_path: Path) -> None:
    children = [started(tmp_path, STUBBORN, f"stubborn-{n}") for n in range(3)]
    began = time.monotonic()
    stop_all(children, signal.SIGTERM, grace_s=0.5)
    assert time.monotonic() - began < 1.5 + 3  # not 0.5 s each, one after the other
    assert [child.returncode for child in children] == [-signal.SIGKILL] * 3


def test_kill_takes_the_whole_process_group(tmp_path: Path) -> None:
    # The child starts a grandchild in its group, records its pid, and waits.
    code = (
        "import subprocess, sys, time;"
        "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print(grandchild.pid, flush=True); print('ready', flush=True); time.sleep(60)"
    )
    child = started(tmp_path, code)
    grandchild = int(child.output().splitlines()[0])
    assert child.kill() == -signal.SIGKILL
    assert not runs(grandchild)  # gone, not merely orphaned


def runs(pid: int) -> bool:
    """Whether ``pid`` runs: exists and is not a zombie (an orphan's reaping is up to PID 1)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_child_inherits_neither_ingestro_nor_libpq_settings_only_those_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTRO_REDIS_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("PGHOST", "elsewhere")
    monkeypatch.setenv("SUPERVISOR_TEST_KEPT", "yes")
    given = {"INGESTRO_BATCH_SIZE": "7"}
    child = Child("env", [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"], given)
    child.log_path = tmp_path / "env.log"
    child.start()
    assert child.popen is not None and child.popen.wait(10) == 0
    seen = orjson.loads(child.output())
    assert seen == child_environment(given)
    assert seen["INGESTRO_BATCH_SIZE"] == "7" and seen["SUPERVISOR_TEST_KEPT"] == "yes"
    assert not any(name.startswith(("PG", "INGESTRO_REDIS")) for name in seen)


def test_output_is_what_this_start_wrote(tmp_path: Path) -> None:
    child = Child("twice", [sys.executable, "-c", "print('hello')"], log_path=tmp_path / "twice.log")
    for _ in range(2):
        child.start()
        assert child.popen is not None and child.popen.wait(10) == 0
        assert child.output() == "hello"
    assert (tmp_path / "twice.log").read_text() == "hello\nhello\n"
