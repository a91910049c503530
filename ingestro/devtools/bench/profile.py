"""Optional py-spy profiles of the Ingestro processes during the measured run, summarized by function.

py-spy leaves out samples of a thread that sleeps (blocked on a socket, say),
but keeps those of a thread that is ready to run and waits for a CPU: on a busy
machine a function's share is of the time its process wanted the CPU, and an
``EpollSelector.select`` or socket ``write`` share is mostly such waiting. It
pauses each process ~100 times a second to read its stack: a profiled run is a
little slower than a plain one, so compare throughput across runs of the same
kind.
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

import attrs

from ingestro.devtools.supervisor import Child, stop_all

_RATE = 100
#: How long py-spy may take to write its profile after SIGINT.
_WRITE_TIMEOUT_S = 60.0
_TOP = 30


class ProfilerMissing(RuntimeError):
    """py-spy is not installed."""


@attrs.frozen
class Profile:
    """How a process's sampled CPU time splits over functions, in % of its samples."""

    samples: int
    #: Where the CPU was: the innermost Python function of each sample.
    self_pct: list[tuple[str, float]]
    #: Time under each function, its callees included; frames in every sample (the entry point, the event
    #: loop) are left out, as they say nothing.
    inclusive_pct: list[tuple[str, float]]

    def describe(self) -> str:
        lines = [f"{self.samples} samples", "", "self % (innermost function):"]
        lines += [f"{share:6.1f}  {frame}" for frame, share in self.self_pct]
        lines += ["", "inclusive % (function and its callees):"]
        lines += [f"{share:6.1f}  {frame}" for frame, share in self.inclusive_pct]
        return "\n".join(lines) + "\n"


def find_py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    if found is None:
        raise ProfilerMissing("--profile needs py-spy: install it with `.venv/bin/pip install py-spy`")
    return found


def summarize(collapsed: Path, top: int = _TOP) -> Profile:
    """Summarize py-spy's raw output: one ``frame;frame;...;innermost COUNT`` line per distinct stack."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):  # a recursive function counts once per sample
            under[frame] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * count / total, 1)) for frame, count in counter.most_common(top)]

    telling = Counter({frame: count for frame, count in under.items() if count < total})
    return Profile(total, shares(own), shares(telling))


@attrs.define
class Profiler:
    """Runs ``py-spy record`` on each process until ``stop()``.

    Each process's collapsed stacks go to ``out_dir/LABEL.collapsed`` (speedscope and flamegraph.pl read them).
    """

    out_dir: Path
    py_spy: str = attrs.field(factory=find_py_spy)
    _spies: dict[str, Child] = attrs.field(factory=dict, init=False)

    def start(self, pids: dict[str, int]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for label, pid in pids.items():
            argv = [self.py_spy, "record", "--pid", str(pid), "--rate", str(_RATE), "--nolineno", "--format", "raw"]
            spy = Child(
                label,
                [*argv, "--output", str(self.out_dir / f"{label}.collapsed")],
                log_path=self.out_dir / f"{label}.py-spy.log",
            )
            spy.start()
            self._spies[label] = spy

    def stop(self) -> dict[str, Profile]:
        """Stop recording (py-spy writes its file on SIGINT) and summarize each profile."""
        stop_all(self._spies.values(), signal.SIGINT, _WRITE_TIMEOUT_S)
        profiles = {}
        for label in self._spies:
            collapsed = self.out_dir / f"{label}.collapsed"
            if collapsed.exists():
                profiles[label] = profile = summarize(collapsed)
                (self.out_dir / f"{label}.summary.txt").write_text(profile.describe())
        self._spies.clear()
        return profiles
