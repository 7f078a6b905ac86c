"""The same chart as hubd's worker (hubd/people/chart_drawing.py), drawn with matplotlib (Agg).

The candidate hubd did not take: bench/plot.py runs it on the same spec to
compare import time, memory and time per chart.  Reads a ChartSpec (JSON) on
stdin and writes a PNG of the same size to stdout.
"""

from __future__ import annotations

import io
import sys
from datetime import datetime


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from hubd.people.chart import ChartSpec

    spec = ChartSpec.from_json(sys.stdin.buffer.read())
    width, height = spec.size
    ratios = [1 if p.boolean else 3 for p in spec.panels]
    figure, axes = plt.subplots(
        len(spec.panels),
        1,
        figsize=(width / 100, height / 100),
        dpi=100,
        sharex=True,
        gridspec_kw={"height_ratios": ratios},
        squeeze=False,
    )
    figure.suptitle(f"{spec.title}\n{spec.subtitle}", x=0.1, ha="left")
    for axis, panel in zip(axes[:, 0], spec.panels, strict=True):
        for series in panel.series:
            times = [datetime.fromtimestamp(t).astimezone() for t, _ in series.points]
            values = [v for _, v in series.points]
            if panel.boolean:
                axis.step(times, values, where="post", label=series.label)
                axis.set_yticks([0, 1], ["off", "on"])
            else:
                axis.plot(times, values, label=series.label, linewidth=1.5)
        axis.set_ylabel(panel.unit or "value")
        axis.grid(True, color="#dddddd")
        axis.legend(loc="upper left")
    last = axes[-1, 0]
    zone = datetime.now().astimezone().tzinfo
    last.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %H:%M", tz=zone))
    last.set_xlabel(f"time ({datetime.now().astimezone():%Z})")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    sys.stdout.buffer.write(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
