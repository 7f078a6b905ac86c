"""The chart worker: reads a :class:`~hubd.people.chart.ChartSpec` (JSON) on stdin, writes a PNG.

Run as ``python -m hubd.people.chart_drawing`` by :func:`hubd.people.chart.render`,
never imported by hubd itself: Pillow (the optional ``plot`` extra) lives only
in this short-lived process.  Chosen by measurement over matplotlib (see
bench/RESULTS.md, "Plots"): a tenth of the import time and a third of the
memory, for the same picture of a week of readings.

Times are drawn in the hub's local time zone (the process's ``TZ``/
``/etc/localtime``), named on the time axis.
"""

from __future__ import annotations

import math
import sys
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hubd.people.chart import (
    BOOLEAN_PANEL_HEIGHT,
    EXIT_MISSING_LIBRARY,
    LEFT,
    MISSING_LIBRARY,
    NUMERIC_PANEL_HEIGHT,
    RIGHT,
    TITLE_HEIGHT,
    ChartSpec,
    Panel,
)

if TYPE_CHECKING:
    from PIL import ImageFont

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
GRID = "#dddddd"
INK = "#222222"
MUTED = "#666666"
#: Candidate distances between time ticks, seconds: about six to ten ticks a chart.
TIME_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _number(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}"


class _Canvas:
    def __init__(self, spec: ChartSpec) -> None:
        from PIL import Image, ImageDraw, ImageFont

        self.spec = spec
        self.width, self.height = spec.size
        self.image = Image.new("RGB", (self.width, self.height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = ImageFont.load_default(size=17)
        self.small = ImageFont.load_default(size=15)
        self.big = ImageFont.load_default(size=26)
        self.x0, self.x1 = LEFT, self.width - RIGHT

    def x(self, ts: float) -> float:
        span = self.spec.end - self.spec.start or 1.0
        return self.x0 + (ts - self.spec.start) / span * (self.x1 - self.x0)

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
        fill: str = INK,
        anchor: str = "la",
    ) -> None:
        self.draw.text(xy, text, fill=fill, font=font, anchor=anchor)

    def vertical_text(self, centre: tuple[float, float], text: str) -> None:
        from PIL import Image, ImageDraw

        left, top, right, bottom = self.font.getbbox(text)
        label = Image.new("RGB", (int(right - left) + 4, int(bottom - top) + 4), "white")
        ImageDraw.Draw(label).text((2 - left, 2 - top), text, fill=INK, font=self.font)
        label = label.rotate(90, expand=True)
        self.image.paste(
            label, (int(centre[0] - label.width / 2), int(centre[1] - label.height / 2))
        )


def draw(spec: ChartSpec) -> bytes:
    """The PNG of ``spec``."""
    import io

    canvas = _Canvas(spec)
    canvas.text((LEFT, 14), spec.title, canvas.big)
    canvas.text((LEFT, 46), spec.subtitle, canvas.small, MUTED)
    top = TITLE_HEIGHT
    colour = 0
    for panel in spec.panels:
        height = BOOLEAN_PANEL_HEIGHT if panel.boolean else NUMERIC_PANEL_HEIGHT
        colour = _draw_panel(canvas, panel, top, top + height, colour)
        top += height
    _draw_time_axis(canvas, TITLE_HEIGHT, top)
    out = io.BytesIO()
    canvas.image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _draw_panel(canvas: _Canvas, panel: Panel, top: int, bottom: int, colour: int) -> int:
    d = canvas.draw
    y0, y1 = top + 34, bottom - 12  # room for the legend above
    if panel.boolean:
        low, high = -0.25, 1.25
    else:
        values = [v for s in panel.series for _, v in s.points] or [0.0]
        low, high = min(values), max(values)
        if high - low < 1e-9:
            low, high = low - 1, high + 1
        pad = (high - low) * 0.08
        low, high = low - pad, high + pad

    def y(value: float) -> float:
        return y1 - (value - low) / (high - low) * (y1 - y0)

    d.rectangle((canvas.x0, y0, canvas.x1, y1), outline=MUTED)
    if panel.boolean:
        for value, word in ((0.0, "off"), (1.0, "on")):
            d.line((canvas.x0, y(value), canvas.x1, y(value)), fill=GRID)
            canvas.text((canvas.x0 - 8, y(value)), word, canvas.small, MUTED, "rm")
    else:
        step = _nice_step(high - low)
        tick = math.ceil(low / step) * step
        while tick <= high:
            d.line((canvas.x0, y(tick), canvas.x1, y(tick)), fill=GRID)
            canvas.text((canvas.x0 - 8, y(tick)), _number(tick, step), canvas.small, MUTED, "rm")
            tick += step
        canvas.vertical_text((22, (y0 + y1) / 2), panel.unit or "value")
    legend_x = canvas.x0
    for series in panel.series:
        ink = COLOURS[colour % len(COLOURS)]
        colour += 1
        d.line((legend_x, top + 18, legend_x + 26, top + 18), fill=ink, width=4)
        canvas.text((legend_x + 32, top + 18), series.label, canvas.font, INK, "lm")
        legend_x += 50 + int(canvas.font.getlength(series.label))
        points = series.points
        if panel.boolean:
            points = _steps(points, canvas.spec.end)
        xy = [(canvas.x(t), y(v)) for t, v in points]
        if len(xy) == 1:
            px, py = xy[0]
            d.ellipse((px - 3, py - 3, px + 3, py + 3), fill=ink)
        elif xy:
            d.line(xy, fill=ink, width=2, joint="curve")
    return colour


def _steps(points: list[tuple[float, float]], end: float) -> list[tuple[float, float]]:
    """On/off as steps: each value holds until the next one (the last until the end)."""
    out: list[tuple[float, float]] = []
    for t, v in points:
        if out:
            out.append((t, out[-1][1]))
        out.append((t, v))
    if out and out[-1][0] < end:
        out.append((end, out[-1][1]))
    return out


def _draw_time_axis(canvas: _Canvas, top: int, bottom: int) -> None:
    spec = canvas.spec
    span = spec.end - spec.start
    step = next((s for s in TIME_STEPS if span / s <= 10), TIME_STEPS[-1])
    # Naive local times on purpose: the hub's zone, stepped by the wall clock.
    local = datetime.fromtimestamp(spec.start)  # noqa: DTZ006
    if step >= 86400:
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = local.replace(second=0, microsecond=0)
        minutes = step // 60
        day = first.replace(hour=0, minute=0)
        elapsed = int((first - day).total_seconds() // 60)
        first = day + timedelta(minutes=math.ceil(elapsed / minutes) * minutes)
    moment = first
    while moment.timestamp() <= spec.end:
        ts = moment.timestamp()
        if ts >= spec.start:
            x = canvas.x(ts)
            canvas.draw.line((x, top + 34, x, bottom), fill=GRID)
            midnight = moment.hour == 0 and moment.minute == 0
            label = moment.strftime("%a %d %b" if step >= 86400 or midnight else "%H:%M")
            canvas.text((x, bottom + 8), label, canvas.small, MUTED, "ma")
        # Naive local times step by wall clock, so ticks stay on the hour across DST.
        moment += timedelta(seconds=step)
    zone = time.strftime("%Z", time.localtime(spec.end))
    offset = time.strftime("%z", time.localtime(spec.end))
    label = f"time ({zone}, UTC{offset[:3]}:{offset[3:]})"
    canvas.text(((canvas.x0 + canvas.x1) / 2, bottom + 36), label, canvas.font, INK, "ma")
    canvas.draw.line((canvas.x0, bottom, canvas.x1, bottom), fill=MUTED)


def main() -> int:
    """Read the spec from stdin, write the PNG to stdout; 3 when Pillow is missing."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        sys.stderr.write(MISSING_LIBRARY + "\n")
        return EXIT_MISSING_LIBRARY
    spec = ChartSpec.from_json(sys.stdin.buffer.read())
    sys.stdout.buffer.write(draw(spec))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
