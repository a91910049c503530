"""Child processes, started and stopped one way: the dev stack, the private servers, the benchmark and the tests.

What a caller may rely on:

- **One rule for the environment** (``child_environment``): a child gets ours without the variables
  that would point it at other servers or settings, Ingestro's own (``INGESTRO_*``) and libpq's
  (``PG*``), plus exactly the variables the caller gives it.
- **Its own session**: a Ctrl-C at the terminal reaches the parent only, which stops its children
  in its own order. The child is the leader of its process group.
- ``stop()`` sends a signal (SIGTERM unless told), waits a grace period, then SIGKILLs whatever is
  left; ``kill()`` SIGKILLs at once, like a crash. Both take the whole process group and the
  child's own children (PostgreSQL's backends leave the group), return only once none of them
  runs any more, report the exit code, and are no-ops on a child that is not running.
- Output goes to the parent's stdout and stderr, or is appended to a log file (``output()``: its
  last lines since this start).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

log = logging.getLogger(__name__)

#: Prefixes of the variables a child never inherits.
_NOT_INHERITED = ("INGESTRO_", "PG")
_LOG_TAIL_LINES = 40
#: How long to wait for a killed group's processes (not our children: wait() cannot) to be gone.
_GROUP_EXIT_TIMEOUT = 10.0


def child_environment(variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without ``INGESTRO_*`` and ``PG*`` variables, plus ``variables``."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(_NOT_INHERITED)}
    return inherited | dict(variables or {})


@attrs.define
class Child:
    """One supervised child process; ``start()`` again after it ended runs it anew."""

    label: str
    argv: list[str]
    #: Variables the child gets beside what it inherits (see ``child_environment``).
    variables: Mapping[str, str] = attrs.field(factory=dict)
    #: Append stdout and stderr to this file; None: the parent's.
    log_path: Path | None = None
    cwd: Path | None = None
    #: More keyword arguments for subprocess.Popen, e.g. ``user`` and ``group`` to run it as another user.
    popen_args: Mapping[str, Any] = attrs.field(factory=dict)
    popen: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False)
    #: Where this start's output begins in the log.
    _log_offset: int = attrs.field(default=0, init=False)

    def start(self) -> None:
        """Start the child (in a new session, stdin from /dev/null)."""
        env = child_environment(self.variables)
        if self.log_path is None:
            self.popen = self._spawn(env, None)
            return
        with self.log_path.open("ab") as log_file:
            self._log_offset = os.fstat(log_file.fileno()).st_size
            self.popen = self._spawn(env, log_file)

    def _spawn(self, env: dict[str, str], log_file: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT if log_file is not None else None,
            cwd=self.cwd,
            env=env,
            start_new_session=True,
            **self.popen_args,
        )

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once it ended (negative: the signal that ended it); None while it runs or before start."""
        return None if self.popen is None else self.popen.poll()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child alone (SIGSTOP, SIGCONT, SIGTERM...), if it runs."""
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace_s: float = 20.0) -> int | None:
        """Send ``sig``, wait up to ``grace_s`` for the child to exit, then kill what is left; the exit code."""
        stop_all([self], sig, grace_s)
        return self.returncode

    def kill(self) -> int | None:
        """SIGKILL the child, its process group and its children, and return once none runs; the exit code."""
        if self.popen is None:
            return None
        pgid = self.popen.pid
        # PostgreSQL's backends leave the postmaster's group (setsid), so the group alone would
        # miss them: take the children too, found before the kill.
        children = _children_of(pgid)
        with contextlib.suppress(ProcessLookupError):  # the group is already empty
            os.killpg(pgid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait()
        # The others are not our children, so wait() does not cover them; a PostgreSQL restarted
        # while a killed backend still holds the shared memory would refuse to start.
        deadline = time.monotonic() + _GROUP_EXIT_TIMEOUT
        while (_group_alive(pgid) or any(_running(pid) for pid in children)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.popen.returncode

    def output(self) -> str:
        """The last lines the child wrote to its log since it was last started."""
        if self.log_path is None:
            return "(no log: its output went to ours)"
        try:
            with self.log_path.open("rb") as file:
                file.seek(self._log_offset)
                text = file.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        lines = text.splitlines()[-_LOG_TAIL_LINES:]
        return "\n".join(lines) if lines else "(log is empty)"


def stop_all(children: Iterable[Child], sig: signal.Signals = signal.SIGTERM, grace_s: float = 20.0) -> None:
    """Send ``sig`` to every child at once, give them ``grace_s`` together, then kill each one left (and its group)."""
    children = list(children)
    for child in children:
        child.send(sig)
    deadline = time.monotonic() + grace_s
    for child in children:
        if child.popen is None:
            continue
        if child.alive():
            try:
                child.popen.wait(max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored %s for %.0f s; killing it", child.label, child.pid, sig.name, grace_s)
        child.kill()


# --- /proc: the processes of a group, and a process's children -------------------------


def _stat_fields(pid: str) -> list[str] | None:
    """State, ppid, pgrp, ... of a process (the fields after its command name), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` still runs (zombies hold no ports or memory)."""
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat_fields(entry.name)  # None: it ended while we looked
        if fields is not None and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat_fields(entry.name)
        if fields is not None and fields[1] == str(parent):
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    fields = _stat_fields(str(pid))
    return fields is not None and fields[0] != "Z"
