"""A chart of stored readings, as data: what :mod:`hubd.people.chart_drawing` draws.

hubd never draws in its own process: the drawing library costs memory that a
hub which is never asked for a plot should not carry.  A chart is described
here (panels of series, reduced to what the picture can show), handed as JSON
to a short-lived worker process (``python -m hubd.people.chart_drawing``)
that writes the PNG to its standard output and exits; its memory goes with it.

Reduction keeps the shape: per pixel column of the plot, the first, the
lowest, the highest and the last reading (so a spike of one reading in a week
of readings every minute still shows), never more than four points a column.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from hubd.errors import ChartUnavailable

#: The picture's width in pixels: readable on a phone held upright or turned.
WIDTH = 1000
TITLE_HEIGHT = 70
NUMERIC_PANEL_HEIGHT = 300
BOOLEAN_PANEL_HEIGHT = 110
AXIS_HEIGHT = 70
#: Horizontal room of the plot area: the width less the y-axis labels and a margin.
LEFT, RIGHT = 110, 30
PLOT_WIDTH = WIDTH - LEFT - RIGHT

#: The worker is killed when it takes longer than this (seconds).
RENDER_TIMEOUT = 20.0
#: Exit status of the worker when the drawing library is not installed.
EXIT_MISSING_LIBRARY = 3
MISSING_LIBRARY = (
    "Plots need the drawing library, which is not installed:"
    " pip install 'hubd[plot]' (or apt-get install python3-pil), then restart hubd."
)


@dataclass(frozen=True, slots=True)
class Series:
    """One field's line: its label and its (epoch seconds, value) points, in time order."""

    label: str
    points: list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Panel:
    """Fields drawn against one y-axis: one unit (numbers), or on/off steps (booleans)."""

    unit: str | None
    boolean: bool
    series: list[Series] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """Everything the worker needs: titles, the time span, the panels."""

    title: str
    subtitle: str
    start: float
    end: float
    panels: list[Panel]

    def to_json(self) -> bytes:
        """The spec as the worker reads it from its standard input."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ChartSpec:
        """The spec :meth:`to_json` wrote."""
        raw = json.loads(data)
        panels = [
            Panel(
                p["unit"],
                p["boolean"],
                [Series(s["label"], [(t, v) for t, v in s["points"]]) for s in p["series"]],
            )
            for p in raw["panels"]
        ]
        return cls(raw["title"], raw["subtitle"], raw["start"], raw["end"], panels)

    @property
    def size(self) -> tuple[int, int]:
        """The picture's (width, height) in pixels."""
        height = TITLE_HEIGHT + AXIS_HEIGHT
        for panel in self.panels:
            height += BOOLEAN_PANEL_HEIGHT if panel.boolean else NUMERIC_PANEL_HEIGHT
        return WIDTH, height


def reduce_points(
    points: Sequence[tuple[float, float]], start: float, end: float, columns: int = PLOT_WIDTH
) -> list[tuple[float, float]]:
    """At most four points per column of ``columns`` between ``start`` and ``end``:
    the first, lowest, highest and last of the column, in time order."""
    if len(points) <= 4 * columns or end <= start:
        return list(points)
    width = (end - start) / columns
    kept: list[tuple[float, float]] = []
    bucket: list[tuple[float, float]] = []
    current = None
    for point in points:
        column = int((point[0] - start) / width)
        if column != current and bucket:
            kept.extend(_extremes(bucket))
            bucket = []
        current = column
        bucket.append(point)
    if bucket:
        kept.extend(_extremes(bucket))
    return kept


def _extremes(bucket: list[tuple[float, float]]) -> list[tuple[float, float]]:
    low = min(bucket, key=lambda p: p[1])
    high = max(bucket, key=lambda p: p[1])
    chosen = {id(p): p for p in (bucket[0], low, high, bucket[-1])}
    return sorted(chosen.values(), key=lambda p: p[0])


async def render(spec: ChartSpec, *, time_limit: float = RENDER_TIMEOUT) -> bytes:
    """Draw ``spec`` in a worker process; return the PNG.

    Raises :class:`~hubd.errors.ChartUnavailable` when the drawing library is
    missing, the worker fails, or it takes longer than ``time_limit`` seconds.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hubd.people.chart_drawing",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(time_limit):
            png, errors = await process.communicate(spec.to_json())
    except TimeoutError:
        raise ChartUnavailable(f"drawing the chart took longer than {time_limit:g} s") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode == EXIT_MISSING_LIBRARY:
        raise ChartUnavailable(MISSING_LIBRARY)
    if process.returncode != 0 or not png.startswith(b"\x89PNG"):
        reason = errors.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ChartUnavailable(f"the chart could not be drawn ({reason[0]})")
    return png
