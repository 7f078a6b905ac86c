"""``history`` and ``plot``: the stored readings of a device, in words or as a picture.

::

    history weather                       every number and switch, last 24 h
    history weather temperature 7d        one field, last 7 days
    plot weather                          a PNG chart, sent as a picture
    plot weather temperature humidity 30d

The same rules as ``read``: the sender must be able to read the device, and a
provisioning server's narrowing of fields holds (a field not opened is answered
as if the device had none such).  A chart is drawn in a worker process
(:mod:`hubd.people.chart`) and shared through a :class:`FileSharing` (XEP-0363
on the hub's server, in hubd.xmpp); the reply is then the file's address, a
:class:`~hubd.people.command.SharedFile`.  Nothing is drawn or uploaded before
every check has passed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from hubd.core.access import Role
from hubd.core.model import Category, FieldSpec, FieldType
from hubd.core.node import Node
from hubd.errors import (
    ChartUnavailable,
    StoreUnavailable,
    UploadError,
    UploadRefused,
    UploadUnavailable,
)
from hubd.events.store import Store
from hubd.people.command import Command, CommandError, Invocation, SharedFile
from hubd.people.commands import ChatCommands
from hubd.people.history_summary import (
    DEFAULT_PERIOD,
    Period,
    Reading,
    parse_period,
    summarise,
)
from hubd.people.wording import BULLET, device_label

if TYPE_CHECKING:  # the chart module is imported by the first plot (a hub may never plot)
    from hubd.people.chart import Panel

#: Readings read per field at most (the newest ones): 30 days of one a minute fit.
READINGS_LIMIT = 200_000
#: Fields drawn in one chart at most.
MAX_PLOTTED = 6
_STATUS_ONLY = frozenset({Category.STATUS})
_CHARTED = (FieldType.NUMERIC, FieldType.INT, FieldType.LONG, FieldType.BOOLEAN)


class FileSharing(Protocol):
    """Puts a file where the sender's client can fetch it; returns its address.

    Raises :class:`~hubd.errors.UploadUnavailable` (no service) or
    :class:`~hubd.errors.UploadRefused` (too large, over quota, not allowed).
    """

    async def share(self, data: bytes, filename: str, content_type: str) -> str: ...


def register_history(commands: ChatCommands, store: Store, sharing: FileSharing) -> None:
    """Add ``history`` and ``plot`` to ``commands``, reading ``store``, sharing through
    ``sharing``."""
    history = HistoryCommands(commands, store, sharing)
    commands.register(
        Command(
            name="history",
            usage="history <device> [<field>] [1h|24h|7d|30d]",
            summary="lowest, highest, mean and changes over a period",
            role=Role.READER,
            run=history.history,
            example=lambda: history.example("history"),
        )
    )
    commands.register(
        Command(
            name="plot",
            usage="plot <device> [<field>...] [1h|24h|7d|30d]",
            summary="a chart of a period, as a picture",
            role=Role.READER,
            run=history.plot,
            example=lambda: history.example("plot"),
        )
    )


class HistoryCommands:
    """The two commands over the store; also what the ad-hoc "Plot a device" runs."""

    def __init__(self, commands: ChatCommands, store: Store, sharing: FileSharing) -> None:
        self.commands = commands
        self.lookup = commands.lookup
        self.store = store
        self.sharing = sharing

    def example(self, word: str) -> str:
        nodes = self.lookup.nodes_for()
        return f"Try: {word} {nodes[0].id} 24h" if nodes else ""

    def _parse(
        self, call: Invocation, *, several: bool
    ) -> tuple[Node, list[FieldSpec], str, Period]:
        if not call.args:
            raise CommandError(
                f"{call.word.capitalize()} of which device? {self.example(call.word)}"
            )
        node, rest = self.lookup.resolve_device(call.args)
        key = DEFAULT_PERIOD
        if rest and parse_period(rest[-1]) is not None:
            key = rest.pop().lower()
        period = parse_period(key)
        if period is None:  # pragma: no cover - DEFAULT_PERIOD always parses
            raise CommandError(f"Unknown period '{key}'.")
        if len(rest) > 1 and not several:
            raise CommandError(
                f"'{' '.join(rest[1:])}' is not a period: try 1h, 24h, 7d or 30d,"
                f" e.g. {call.word} {node.id} {rest[0]} 7d"
            )
        fields = [self._field(node, word, call.word) for word in rest]
        return node, fields, key, period

    def _field(self, node: Node, word: str, command: str) -> FieldSpec:
        spec = self.lookup.resolve_field(node, word)
        if spec is None:
            names = ", ".join(s.name for s in self.lookup.fields_of(node))
            raise CommandError(
                f"{node.id} has no field '{word}'; fields: {names}."
                f" Periods are 1h, 24h, 7d, 30d: {command} {node.id} 7d"
            )
        return spec

    def _default_fields(self, node: Node) -> list[FieldSpec]:
        """The numbers and switches a device measures (not its status: ``online``, ``errors``)."""
        return [
            s
            for s in self.lookup.fields_of(node)
            if s.type in _CHARTED and s.name != "online" and s.categories != _STATUS_ONLY
        ]

    async def _readings(
        self, node: Node, spec: FieldSpec, start: float
    ) -> tuple[list[Reading], Reading | None]:
        # Up to infinity: readings stamped after now (a clock that was ahead) are
        # counted by the summary, not silently lost.
        try:
            return await self.store.readings(node.id, spec.name, start, math.inf, READINGS_LIMIT)
        except StoreUnavailable as err:
            raise CommandError(f"The history cannot be read now: {err}") from None

    # ---------------------------------------------------------------- history

    async def history(self, call: Invocation) -> str:
        node, fields, _, period = self._parse(call, several=False)
        now = self.commands.now()
        start = now.timestamp() - period.seconds
        lines = []
        for spec in fields or self._default_fields(node):
            readings, before = await self._readings(node, spec, start)
            if not fields and not readings and before is None:
                continue  # nothing ever stored: not worth a line in the overview
            line = await asyncio.to_thread(summarise, spec, readings, before, start=start, now=now)
            lines.append(line)
        zone = now.astimezone().strftime("%Z")
        if not lines:
            return f"No history of {node.id} in the last {period.words}."
        if len(lines) == 1:
            return f"{node.name}, last {period.words} ({zone}): {lines[0]}"
        header = f"{node.name}, last {period.words} (times {zone}):"
        return "\n".join([header, *(BULLET + line for line in lines)])

    # ------------------------------------------------------------------- plot

    async def plot(self, call: Invocation) -> str:
        node, fields, key, period = self._parse(call, several=True)
        for spec in fields:
            if spec.type not in _CHARTED:
                raise CommandError(
                    f"{node.id} {spec.name} is {spec.type.value}: only numbers and on/off"
                    f" can be drawn. Try: history {node.id} {spec.name}"
                )
        now = self.commands.now()
        end = now.timestamp()
        start = end - period.seconds
        chosen = fields or self._default_fields(node)
        series: list[tuple[FieldSpec, list[tuple[float, float]]]] = []
        total = 0
        for spec in chosen:
            try:
                count, points = await chart_series(self.store, node.id, spec, start, end)
            except StoreUnavailable as err:
                raise CommandError(f"The history cannot be read now: {err}") from None
            total += count
            if points:
                series.append((spec, points))
            if len(series) == MAX_PLOTTED:
                break
        if not series:
            return f"No history of {node.id} in the last {period.words}: nothing to plot."
        from hubd.people.chart import ChartSpec, render

        stamp = now.astimezone().strftime("%d %b %Y %H:%M %Z")
        chart = ChartSpec(
            title=device_label(node),
            subtitle=f"last {period.words} · {total} readings · drawn {stamp}",
            start=start,
            end=end,
            panels=_panels(series),
        )
        try:
            png = await render(chart)
        except ChartUnavailable as err:
            raise CommandError(f"Cannot draw the chart: {err}") from None
        name = f"{node.id}-{key}-{now.strftime('%Y%m%dT%H%M%S')}.png"
        try:
            return SharedFile(await self.sharing.share(png, name, "image/png"))
        except UploadUnavailable as err:
            raise CommandError(
                f"Cannot send pictures: {err}. Ask the server's admin for HTTP File Upload"
                f" (XEP-0363), or set uploads: service: in the config. Try: history {node.id}"
            ) from None
        except UploadRefused as err:
            raise CommandError(
                f"The server refused the chart: {err}. Try: history {node.id} {key}"
            ) from None
        except UploadError as err:
            raise CommandError(f"The chart could not be uploaded: {err}") from None


async def chart_series(
    store: Store, node_id: str, spec: FieldSpec, start: float, end: float
) -> tuple[int, list[tuple[float, float]]]:
    """How many readings of a field lie in the period, and the points to draw: a long
    series of numbers is reduced by the store (hubd never holds it whole), a short
    one is read as it is."""
    from hubd.people.chart import PLOT_WIDTH

    if spec.type is not FieldType.BOOLEAN:
        count, reduced = await store.chart_points(node_id, spec.name, start, end, PLOT_WIDTH)
        if reduced is not None:
            return count, reduced
    readings, before = await store.readings(node_id, spec.name, start, math.inf, READINGS_LIMIT)
    points = await asyncio.to_thread(_points, spec, readings, before, start, end)
    return sum(1 for r in readings if r[0] <= end), points


def _points(
    spec: FieldSpec,
    readings: Sequence[Reading],
    before: Reading | None,
    start: float,
    end: float,
) -> list[tuple[float, float]]:
    """A field's readings as (time, number), on/off as 1/0; later than ``end`` left out."""
    from hubd.people.chart import reduce_points

    raw = sorted((r for r in readings if start <= r[0] <= end), key=lambda r: r[0])
    if spec.type is FieldType.BOOLEAN:
        if before is not None:
            raw.insert(0, (start, before[1], before[2]))  # the state the period began in
        return [(ts, 1.0 if text in ("true", "1") else 0.0) for ts, _, text in raw]
    points = []
    for ts, _, text in raw:
        try:
            points.append((ts, float(text)))
        except ValueError:
            continue  # a value of another type stored under this name earlier
    return reduce_points(points, start, end)


def _panels(series: Sequence[tuple[FieldSpec, list[tuple[float, float]]]]) -> list[Panel]:
    """Numbers grouped by unit (one axis each), every on/off field a strip of its own."""
    from hubd.people.chart import Panel, Series

    panels: list[Panel] = []
    by_unit: dict[str | None, Panel] = {}
    for spec, points in series:
        line = Series(spec.name, points)
        if spec.type is FieldType.BOOLEAN:
            panels.append(Panel(None, True, [line]))
            continue
        panel = by_unit.get(spec.unit)
        if panel is None:
            panel = by_unit[spec.unit] = Panel(spec.unit, False)
            panels.append(panel)
        panel.series.append(line)
    return panels
