"""What ``ingestro upload`` shows while it works, on stderr: bytes sent, then each job's progress.

On a terminal, one line per file is redrawn in place (a bar of the bytes sent, then the job's
status and counts); anywhere else (a pipe, a CI log), plain lines, few of them: every quarter of
the bytes sent, and each status a job reaches. No dependency: a carriage return redraws.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

import attrs

_WIDTH = 30
_REDRAW_S = 0.1


def size(count: float) -> str:
    """``count`` bytes for people: 512 B, 1.5 KiB, 12.3 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def bar(sent: int, total: int, width: int = _WIDTH) -> str:
    """``[#####.....]  50%  1.0 MiB / 2.0 MiB``."""
    share = min(sent / total, 1.0) if total else 1.0
    filled = int(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}  {size(sent)} / {size(total)}"


def counts(job: dict[str, Any]) -> str:
    """A job's counts so far, in a few words."""
    total = job.get("rows_total")
    parsed = "?" if total is None else str(total)
    return (
        f"rows {parsed}, accepted {job.get('rows_accepted') or 0}, rejected {job.get('rows_rejected') or 0},"
        f" inserted {job.get('rows_inserted') or 0}, updated {job.get('rows_updated') or 0},"
        f" duplicates {job.get('rows_duplicate') or 0}"
    )


@attrs.define
class UploadProgress:
    """The bytes of one file sent so far, drawn on ``out``."""

    out: TextIO
    name: str
    total: int
    tty: bool
    _drawn_at: float = 0.0
    _quarters: int = 0

    def sent(self, count: int) -> None:
        if self.tty:
            now = time.monotonic()
            if now - self._drawn_at >= _REDRAW_S or count >= self.total:
                self._drawn_at = now
                self.out.write(f"\r{self.name}: {bar(count, self.total)}")
                self.out.flush()
            return
        quarters = 4 if not self.total else min(4, count * 4 // self.total)
        while self._quarters < quarters:
            self._quarters += 1
            self.out.write(f"{self.name}: sent {self._quarters * 25}% ({size(count)} of {size(self.total)})\n")
        self.out.flush()

    def restart(self) -> None:
        """The send is tried again from its first byte."""
        self._quarters = 0
        if not self.tty:
            self.out.write(f"{self.name}: sending again\n")

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


@attrs.define
class JobProgress:
    """A job's status and counts as its events arrive, drawn on ``out``."""

    out: TextIO
    name: str
    tty: bool
    status: str | None = None
    _counts: dict[str, Any] = attrs.field(factory=dict)
    _width: int = 0

    def progress(self, data: dict[str, Any]) -> None:
        self._counts = data
        if self.tty:
            self._draw()

    def status_changed(self, status: str, error: str | None = None) -> None:
        self.status = status
        if self.tty:
            self._draw()
        else:
            reason = f": {error}" if error else ""
            self.out.write(f"{self.name}: {status} ({counts(self._counts)}){reason}\n")
            self.out.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.out.write("\n")
            self.out.flush()

    def _draw(self) -> None:
        line = f"{self.name}: {self.status or '…'}  {counts(self._counts)}"
        self.out.write("\r" + line.ljust(self._width))
        self._width = max(self._width, len(line))
        self.out.flush()
