"""Peak memory and CPU time of process trees, sampled from /proc while the benchmark runs.

Each tree is a named root process and its descendants (a PostgreSQL postmaster
and its backends, a redis-server and its AOF-rewrite child). Peaks come from the
kernel's VmHWM, so a spike between two samples is not missed; a process that
comes and goes between two samples is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import attrs

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@attrs.frozen
class _ProcessSample:
    ppid: int
    cpu_ticks: int
    hwm_kb: int
    anon_kb: int
    file_kb: int
    shmem_kb: int


@attrs.define
class TreeUsage:
    """What one process tree used while sampled."""

    name: str
    root: int
    #: Largest peak RSS (VmHWM) of any one process of the tree, in kB.
    peak_process_kb: int = 0
    #: Largest estimate, at one sample, of what the whole tree holds, in kB: every process's anonymous
    #: memory, plus file-backed and shared memory counted once (the largest of any process). For
    #: PostgreSQL this is the honest total: each backend's RSS also counts the shared buffers it touched.
    peak_total_kb: int = 0
    #: CPU clock ticks (user + system) of each process at the latest and at the first sample, by pid.
    _cpu_ticks: dict[int, int] = attrs.field(factory=dict)
    _base_ticks: dict[int, int] | None = None

    def record(self, processes: dict[int, _ProcessSample]) -> None:
        """Take one sample of the tree's processes."""
        if self._base_ticks is None:
            # CPU counts from the tree's first sample: what its processes spent starting up is not
            # the run's. A process born later (a new backend) counts in full.
            self._base_ticks = {pid: process.cpu_ticks for pid, process in processes.items()}
        anon_kb = file_kb = shmem_kb = 0
        for pid, process in processes.items():
            self.peak_process_kb = max(self.peak_process_kb, process.hwm_kb)
            anon_kb += process.anon_kb
            file_kb = max(file_kb, process.file_kb)
            shmem_kb = max(shmem_kb, process.shmem_kb)
            self._cpu_ticks[pid] = process.cpu_ticks
        self.peak_total_kb = max(self.peak_total_kb, anon_kb + file_kb + shmem_kb)

    @property
    def cpu_s(self) -> float:
        base = self._base_ticks or {}
        return sum(ticks - base.get(pid, 0) for pid, ticks in self._cpu_ticks.items()) / _TICKS_PER_S

    @property
    def processes(self) -> int:
        return len(self._cpu_ticks)


def _read_process(pid: int) -> _ProcessSample | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        status = (_PROC / str(pid) / "status").read_text()
    except OSError:  # it ended while we looked
        return None
    # Fields after the ")" closing the command name start at field 3 (state).
    fields = stat[stat.rindex(")") + 2 :].split()
    ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    memory = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "RssAnon", "RssFile", "RssShmem"):
            memory[key] = int(value.split()[0])
    return _ProcessSample(
        ppid,
        utime + stime,
        memory.get("VmHWM", 0),
        memory.get("RssAnon", 0),
        memory.get("RssFile", 0),
        memory.get("RssShmem", 0),
    )


def machine_busy_ticks() -> int:
    """CPU clock ticks the whole machine has spent on anything but idling, since boot."""
    # The first line of /proc/stat: "cpu user nice system idle iowait irq softirq steal ...".
    ticks = [int(field) for field in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4]


def _snapshot() -> dict[int, _ProcessSample]:
    samples = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            sample = _read_process(int(entry.name))
            if sample is not None:
                samples[int(entry.name)] = sample
    return samples


def _tree(root: int, children: dict[int, list[int]]) -> Iterable[int]:
    pending = [root]
    while pending:
        pid = pending.pop()
        yield pid
        pending.extend(children.get(pid, ()))


@attrs.define
class UsageSampler:
    """Samples the watched process trees every ``interval_s`` on a background thread, from ``start()`` to ``stop()``."""

    interval_s: float = 0.2
    usage: dict[str, TreeUsage] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _stop: threading.Event = attrs.field(factory=threading.Event, init=False)
    _thread: threading.Thread | None = attrs.field(default=None, init=False)
    _machine_ticks: int = attrs.field(default=0, init=False)
    _started: float = attrs.field(default=0.0, init=False)
    #: Seconds from ``start()`` to ``stop()``.
    sampled_s: float = attrs.field(default=0.0, init=False)
    #: CPU seconds the whole machine was busy meanwhile: ours and everyone else's.
    machine_cpu_s: float = attrs.field(default=0.0, init=False)

    def watch(self, roots: dict[str, int]) -> None:
        """Sample these trees too (by name: root pid), from now on."""
        with self._lock:
            for name, pid in roots.items():
                self.usage[name] = TreeUsage(name, pid)
        self.sample()

    def start(self) -> None:
        self._machine_ticks = machine_busy_ticks()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, TreeUsage]:
        """Stop sampling after one last sample (call it while the processes still run)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        self.machine_cpu_s = (machine_busy_ticks() - self._machine_ticks) / _TICKS_PER_S
        self.sampled_s = time.monotonic() - self._started
        return self.usage

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        snapshot = _snapshot()
        children: dict[int, list[int]] = {}
        for pid, process in snapshot.items():
            children.setdefault(process.ppid, []).append(pid)
        with self._lock:
            for usage in self.usage.values():
                tree = {pid: snapshot[pid] for pid in _tree(usage.root, children) if pid in snapshot}
                usage.record(tree)
