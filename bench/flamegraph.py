"""Flame graphs and hot-spot tables from collapsed stacks (py-spy's ``--format raw``: one line
per distinct stack, ``outer;...;inner count``).

py-spy writes either an SVG or the raw stacks from one recording; the SVG is drawn here from the
raw stacks so that one recording (one sampler per process, half the sampling load) gives both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from html import escape

WIDTH = 1200  # pixels
FRAME_HEIGHT = 16
FONT_SIZE = 11
CHAR_WIDTH = 6.2  # pixels per character at FONT_SIZE, roughly, for truncating labels


@dataclass
class Frame:
    name: str
    samples: int = 0
    children: dict[str, Frame] = field(default_factory=dict)


def parse(collapsed: str) -> dict[tuple[str, ...], int]:
    """Stack (outermost first) -> samples."""
    stacks: dict[tuple[str, ...], int] = {}
    for line in collapsed.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(stack.split(";"))
        stacks[frames] = stacks.get(frames, 0) + int(count)
    return stacks


def tree(stacks: dict[tuple[str, ...], int]) -> Frame:
    root = Frame("all")
    for frames, count in stacks.items():
        root.samples += count
        node = root
        for name in frames:
            node = node.children.setdefault(name, Frame(name))
            node.samples += count
    return root


@dataclass(frozen=True)
class Row:
    function: str
    samples: int


def hottest(stacks: dict[tuple[str, ...], int], top: int = 25) -> tuple[list[Row], list[Row]]:
    """The functions with most samples of their own (the innermost frame), and those with most
    samples in them or in what they called (each stack counted once per function)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    for frames, count in stacks.items():
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for name in set(frames):
            total[name] = total.get(name, 0) + count
    by_own = sorted(own.items(), key=lambda item: -item[1])[:top]
    by_total = sorted(total.items(), key=lambda item: -item[1])[:top]
    return [Row(*item) for item in by_own], [Row(*item) for item in by_total]


def summary(title: str, stacks: dict[tuple[str, ...], int], rate: float, top: int = 25) -> str:
    """A text table of the hot spots, readable without opening the SVG."""
    samples = sum(stacks.values())
    by_own, by_total = hottest(stacks, top)
    lines = [
        title,
        f"{samples} samples at {rate:g} Hz of threads holding the GIL ({samples / rate:.1f} s: "
        "running, or ready to run and waiting for a CPU; on a busy machine more than the "
        "CPU time, in much the same proportions)",
        "",
        f"Top {top} by own samples (the function itself was running):",
    ]
    for row in by_own:
        lines.append(f"{_share(row.samples, samples):>6}  {row.samples:>6}  {row.function}")
    lines += ["", f"Top {top} by total samples (the function or what it called):"]
    for row in by_total:
        lines.append(f"{_share(row.samples, samples):>6}  {row.samples:>6}  {row.function}")
    return "\n".join(lines) + "\n"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def svg(title: str, stacks: dict[tuple[str, ...], int]) -> str:
    """A flame graph (callers below, callees above), each frame's samples and share in its
    tooltip."""
    root = tree(stacks)
    depth = _depth(root)
    height = (depth + 2) * FRAME_HEIGHT + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="{FONT_SIZE}">',
        '<rect width="100%" height="100%" fill="#f8f8f8"/>',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    total = root.samples or 1

    def draw(frame: Frame, x: float, level: int) -> None:
        width = WIDTH * frame.samples / total
        if width < 0.5:  # invisible, and the files would grow by half
            return
        y = height - (level + 1) * FRAME_HEIGHT
        share = 100 * frame.samples / total
        label = frame.name if level else f"all ({frame.samples} samples)"
        fits = int((width - 4) / CHAR_WIDTH)
        text = label if len(label) <= fits else (label[: fits - 2] + ".." if fits > 3 else "")
        parts.append(
            f"<g><title>{escape(label)} ({frame.samples} samples, {share:.2f}%)</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{FRAME_HEIGHT - 1}" '
            f'fill="{_colour(frame.name)}" rx="2"/>'
            + (
                f'<text x="{x + 3:.1f}" y="{y + FRAME_HEIGHT - 4}">{escape(text)}</text>'
                if text
                else ""
            )
            + "</g>"
        )
        child_x = x
        for child in sorted(frame.children.values(), key=lambda c: c.name):
            draw(child, child_x, level + 1)
            child_x += WIDTH * child.samples / total

    draw(root, 0.0, 0)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _depth(frame: Frame) -> int:
    return 1 + max((_depth(child) for child in frame.children.values()), default=0)


def _colour(name: str) -> str:
    """Warm colours, the same for the same function in every graph."""
    digest = hashlib.blake2s(name.encode(), digest_size=3).digest()
    return f"rgb({205 + digest[0] % 50},{80 + digest[1] % 130},{digest[2] % 60})"
