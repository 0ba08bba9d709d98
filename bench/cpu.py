"""Where the machine's CPU went during a measurement: seconds of CPU per component."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[str, int, float]]:
    """pid -> (command line, parent pid, CPU seconds so far) for every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = (command, int(stat[1]), (int(stat[11]) + int(stat[12])) / _TICKS)
    return found


def _within(processes: dict[int, tuple[str, int, float]], roots: set[int]) -> set[int]:
    """The roots and every process descended from one of them."""
    inside: dict[int, bool] = {}

    def descends(pid: int) -> bool:
        path = []
        while pid not in inside:
            if pid in roots:
                inside[pid] = True
                break
            if pid not in processes or pid <= 1:
                inside[pid] = False
                break
            path.append(pid)
            pid = processes[pid][1]
        verdict = inside[pid]
        for step in path:
            inside[step] = verdict
        return verdict

    return {pid for pid in processes if descends(pid)}


def _component(command: str, names: dict[str, str]) -> str:
    for needle, name in names.items():
        if needle in command:
            return name
    if command.startswith("postgres"):
        return "postgresql"
    if "kafka.Kafka" in command:
        return "kafka"
    return "other"


def _owner(processes: dict[int, tuple[str, int, float]], pid: int) -> str:
    """The command line ``pid``'s time counts under: a process started by multiprocessing (an
    HTTP worker of a service, see service_kit.workers) has none of its own, and is its
    parent's."""
    command, parent, _ = processes[pid]
    while "from multiprocessing" in command and parent in processes:
        command, parent, _ = processes[parent]
    return command


class CpuMeter:
    """CPU seconds per component between ``start()`` and ``stop()``, as shares of the wall.

    With ``roots`` only those processes and their descendants count: other people's brokers,
    databases and services on a shared machine have the same command lines as ours."""

    def __init__(self, names: dict[str, str], roots: Iterable[int] | None = None) -> None:
        self._names = names  # substring of the command line -> component name
        self._roots = None if roots is None else set(roots)
        self._before: dict[int, tuple[str, int, float]] = {}

    def start(self) -> None:
        self._before = _processes()

    def seconds(self) -> dict[str, float]:
        """CPU seconds per component since ``start()``, most first."""
        now = _processes()
        counted = now.keys() if self._roots is None else _within(now, self._roots)
        used: dict[str, float] = {}
        for pid in counted:
            command, _, seconds = now[pid]
            before = self._before.get(pid)
            # A pid reused by a new process since start(): all of its time is new.
            spent = seconds - before[2] if before is not None and before[0] == command else seconds
            name = _component(_owner(now, pid), self._names)
            used[name] = used.get(name, 0.0) + spent
        return dict(sorted(used.items(), key=lambda item: -item[1]))

    def stop(self, wall_seconds: float) -> dict[str, float]:
        """Cores used per component (1.0 = one core busy the whole time)."""
        return {
            name: round(seconds / wall_seconds, 2)
            for name, seconds in self.seconds().items()
            if seconds / wall_seconds >= 0.01
        }


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core, every process)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / _TICKS


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds ``pid`` has spent so far (its own, not its children's); None
    once it is gone. One file read: cheap enough to sample many times a second."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(stat[11]) + int(stat[12])) / _TICKS
