"""Reading a process tree's CPU time and memory from /proc, and the percentiles of the result tables."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
        fields = raw[raw.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    children = _children_map()
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def _cpu_and_rss(pid: int) -> tuple[float, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    # Fields 14 and 15 (utime, stime) and 24 (rss) of proc(5), counted from the state field at index 0 here.
    cpu_s = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return cpu_s, int(fields[21]) * _PAGE


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class TreeSample:
    cpu_s: float
    rss: int
    pss: int
    processes: int


@dataclass
class TreeSampler:
    """Samples a process tree every ``interval_s``: CPU seconds (kept for processes that exit) and peak memory.

    Memory is reported two ways: the sum of resident sets (counts pages shared between a parent and its forked
    children twice, so it over-states) and the sum of proportional set sizes (shared pages split between sharers).
    """

    root: int
    interval_s: float = 0.25
    peak_rss: int = 0
    peak_pss: int = 0
    peak_processes: int = 0
    _cpu_by_pid: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> TreeSample:
        rss = pss = count = 0
        for pid in process_tree(self.root):
            read = _cpu_and_rss(pid)
            if read is None:
                continue
            cpu_s, resident = read
            self._cpu_by_pid[pid] = cpu_s
            rss += resident
            pss += _pss(pid)
            count += 1
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, count)
        return TreeSample(sum(self._cpu_by_pid.values()), rss, pss, count)

    def cpu_s(self) -> float:
        return self.sample().cpu_s

    def start(self) -> TreeSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{self.root}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def stop(self) -> TreeSample:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.sample()


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def mib(value: int) -> float:
    return value / (1024 * 1024)


def iso_to_ts(text: str) -> float:
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
