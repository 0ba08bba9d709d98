"""Where the machine's CPU went during a measurement: seconds of CPU per component."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[str, float]]:
    """pid -> (command line, CPU seconds so far) for every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = (command, (int(stat[11]) + int(stat[12])) / _TICKS)
    return found


def _component(command: str, names: dict[str, str]) -> str:
    for needle, name in names.items():
        if needle in command:
            return name
    if command.startswith("postgres"):
        return "postgresql"
    if "kafka.Kafka" in command:
        return "kafka"
    return "other"


class CpuMeter:
    """CPU seconds per component between ``start()`` and ``stop()``, as shares of the wall."""

    def __init__(self, names: dict[str, str]) -> None:
        self._names = names  # substring of the command line -> component name
        self._before: dict[int, tuple[str, float]] = {}

    def start(self) -> None:
        self._before = _processes()

    def stop(self, wall_seconds: float) -> dict[str, float]:
        """Cores used per component (1.0 = one core busy the whole time)."""
        used: dict[str, float] = {}
        for pid, (command, seconds) in _processes().items():
            spent = seconds - self._before.get(pid, (command, 0.0))[1]
            name = _component(command, self._names)
            used[name] = used.get(name, 0.0) + spent
        return {
            name: round(seconds / wall_seconds, 2)
            for name, seconds in sorted(used.items(), key=lambda item: -item[1])
            if seconds / wall_seconds >= 0.01
        }
