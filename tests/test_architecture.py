"""The walls of the house, checked: which module may import what, no circles, small modules.

Read from the source with ``ast`` (nothing is imported), so an import inside a
function or under ``if TYPE_CHECKING:`` counts like any other: a type-only
import still ties two modules together for a reader.

The floors, lowest first; a module may import its own package and any lower
floor, never a higher one, nor a package beside it on the same floor::

    5  hubd.service                    the daemon around the hub (the composition root)
    4  hubd.xmpp                       the XMPP wing (the only one that imports slixmpp)
    3  hubd.people                     chat commands, in words, no XMPP
    2  hubd.events, drivers,           events and their store; the hardware;
       hubd.testing                    the shipped test kit (fakes, Prosody), imported by no one
    1  hubd.core                       model, driver port, hub, access, config schema
    0  hubd.errors, hubd (__init__)    the one exception tree; the version
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 500

FLOORS: dict[str, int] = {
    "hubd": 0,  # the package itself: only __version__
    "hubd.errors": 0,
    "hubd.core": 1,
    "hubd.events": 2,
    "drivers": 2,
    "hubd.people": 3,
    "hubd.xmpp": 4,
    "hubd.service": 5,
    "hubd.testing": 2,
    "hubd.__main__": 6,  # `python -m hubd`: runs the service
}

XMPP_LIBRARIES = ("slixmpp",)
HARDWARE_LIBRARIES = (
    "gpiozero",
    "lgpio",
    "pigpio",
    "RPi",
    "serial",
    "serial_asyncio_fast",
    "bleak",
    "bleak_retry_connector",
    "dbus_fast",
)


@dataclass(frozen=True, slots=True)
class Import:
    importer: str  # dotted module name
    target: str  # dotted name as imported (a module, or a module's attribute)
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ("hubd", "drivers"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, path, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import mod` imports a module; `from mod import name` the module.
            found += [Import(module, f"{source}.{a.name}", path, node.lineno) for a in node.names]
    return found


IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]


def _own_module(target: str) -> str | None:
    """The module of hubd/ or drivers/ that ``target`` names (or lies in); None if outside."""
    name = target
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _floor_of(module: str) -> tuple[str, int]:
    """The floor package a module belongs to (the longest prefix in FLOORS), and its floor."""
    name = module
    while name not in FLOORS:
        name = name.rpartition(".")[0]
    return name, FLOORS[name]


def _top(target: str) -> str:
    return target.split(".", 1)[0]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_module_has_a_floor() -> None:
    unplaced = [m for m in MODULES if not any(_within(m, p) for p in FLOORS)]
    assert not unplaced, f"modules on no floor (add their package to FLOORS): {unplaced}"


def test_only_the_xmpp_wing_imports_slixmpp() -> None:
    wrong = [
        f"{imp.where()}: {imp.importer} imports {imp.target}"
        for imp in IMPORTS
        if _top(imp.target) in XMPP_LIBRARIES and not _within(imp.importer, "hubd.xmpp")
    ]
    assert not wrong, "only hubd/xmpp/ may import slixmpp (ports and adapters):\n" + "\n".join(
        wrong
    )


def test_only_drivers_import_hardware_libraries() -> None:
    # No exception for hubd.testing: the demo's weather station is a pty, not pyserial.
    wrong = [
        f"{imp.where()}: {imp.importer} imports {imp.target}"
        for imp in IMPORTS
        if _top(imp.target) in HARDWARE_LIBRARIES and not _within(imp.importer, "drivers")
    ]
    assert not wrong, "only drivers/ may import hardware libraries:\n" + "\n".join(wrong)


def test_hubd_never_names_a_driver() -> None:
    # Drivers come through the hubd.drivers entry points (hubd.core.registry), never by name.
    wrong = [
        f"{imp.where()}: {imp.importer} imports {imp.target}"
        for imp in IMPORTS
        if _within(imp.importer, "hubd") and _top(imp.target) == "drivers"
    ]
    assert not wrong, "hubd/ may not import drivers/ by name:\n" + "\n".join(wrong)


def test_drivers_never_import_the_xmpp_wing() -> None:
    wrong = [
        f"{imp.where()}: {imp.importer} imports {imp.target}"
        for imp in IMPORTS
        if _within(imp.importer, "drivers") and _within(imp.target, "hubd.xmpp")
    ]
    assert not wrong, "drivers/ may not import hubd.xmpp:\n" + "\n".join(wrong)


def test_only_tests_import_the_test_kit() -> None:
    wrong = [
        f"{imp.where()}: {imp.importer} imports {imp.target}"
        for imp in IMPORTS
        if _within(imp.target, "hubd.testing") and not _within(imp.importer, "hubd.testing")
    ]
    assert not wrong, "hubd.testing is for tests and the demo, not for hubd:\n" + "\n".join(wrong)


def test_no_floor_imports_a_higher_one_or_a_neighbour() -> None:
    wrong = []
    for imp in IMPORTS:
        target = _own_module(imp.target)
        if target is None:
            continue
        mine, my_floor = _floor_of(imp.importer)
        theirs, their_floor = _floor_of(target)
        if mine != theirs and their_floor >= my_floor:
            side = "a higher floor" if their_floor > my_floor else "a package on the same floor"
            wrong.append(
                f"{imp.where()}: {imp.importer} (floor {my_floor}, {mine}) imports {target}"
                f" ({side}: floor {their_floor}, {theirs})"
            )
    assert not wrong, (
        "imports run down the floors only (see this module's docstring):\n" + "\n".join(wrong)
    )


def _cycles() -> list[list[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        target = _own_module(imp.target)
        if target is not None and target != imp.importer:
            graph[imp.importer].add(target)
    # Tarjan's strongly connected components; any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    circles = _cycles()
    assert not circles, "modules that import each other (type-only imports count):\n" + "\n".join(
        " <-> ".join(c) for c in circles
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, (
        f"{MODULES[module].relative_to(ROOT)} has {lines} lines (at most {MAX_LINES}): "
        "split it by concept"
    )


def test_every_package_says_what_it_holds() -> None:
    silent = [
        str(path.relative_to(ROOT))
        for path in MODULES.values()
        if path.name == "__init__.py"
        and path.parent.name in {p.rpartition(".")[2] for p in FLOORS}
        and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not silent, f"packages without a docstring saying what lives there: {silent}"


def test_the_checks_see_the_code() -> None:
    # A walk that found nothing would pass every rule above.
    assert {"hubd.core.hub", "hubd.xmpp.client", "drivers.gpio.output"} <= set(MODULES)
    assert any(imp.target.startswith("slixmpp") for imp in IMPORTS)
    assert any(_own_module(imp.target) == "hubd.core.model" for imp in IMPORTS)
