"""The ``hubd`` command: ``run``, ``check``, ``drivers``, ``claim``, ``omemo fingerprint``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel

from hubd import __version__
from hubd.core.config import DEFAULT_CONFIG, Config, load_config
from hubd.core.driver import DriverConfig
from hubd.core.registry import DriverRegistry
from hubd.errors import BrokenPlugin, ConfigError
from hubd.service.logs import setup_logging

EXIT_CONFIG = 78


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hubd`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    plugins = {point.name: point for point in entry_points(group=COMMAND_GROUP)}
    if arguments and arguments[0] in plugins:
        # A driver's own command parses its own arguments (--help included).
        command_main: Callable[[list[str]], int] = plugins[arguments[0]].load()
        return command_main(arguments[1:])
    parser = _parser(plugins)
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return 2
    command: int = args.func(args)
    return command


def _parser(plugins: dict[str, EntryPoint]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubd", description="Put a house's hardware on XMPP as one IoT concentrator."
    )
    parser.add_argument("--version", action="version", version=f"hubd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    run.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    run.set_defaults(func=_run)
    check = commands.add_parser("check", help="validate the configuration and exit")
    check.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    check.set_defaults(func=_check)
    drivers = commands.add_parser("drivers", help="list installed drivers, options and fields")
    drivers.set_defaults(func=_drivers)
    claim = commands.add_parser(
        "claim", help="print the XEP-0347 claim code (and QR code) for the hub's owner"
    )
    claim.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    claim.set_defaults(func=_claim)
    omemo = commands.add_parser("omemo", help="the hub's end-to-end encryption (OMEMO)")
    omemo_commands = omemo.add_subparsers(dest="omemo_command", metavar="OMEMO_COMMAND")
    omemo_fp = omemo_commands.add_parser(
        "fingerprint", help="print the hub's OMEMO fingerprint, for people to verify"
    )
    omemo_fp.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="config file")
    omemo_fp.set_defaults(func=_omemo_fingerprint)
    omemo.set_defaults(func=lambda _args: _usage(omemo))
    # Commands that drivers bring (e.g. ble-record), found like drivers: by entry
    # point, so the core names none of them and imports them only when run.
    for name, point in plugins.items():
        commands.add_parser(name, help=f"from {point.module}; {name} --help for more")
    return parser


COMMAND_GROUP = "hubd.commands"


def _load(path: Path, out: TextIO) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as err:
        count = len(err.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}:", file=out)
        for problem in err.problems:
            print(f"  {problem}", file=out)
        return None


def _check(args: argparse.Namespace) -> int:
    config = _load(args.config, sys.stderr)
    if config is None:
        return 1
    print(f"{args.config}: OK ({len(config.devices)} devices, account {config.xmpp.jid})")
    from hubd.service.claim_code import owner_line

    line = owner_line(config)
    if line is not None:
        print(line)
    return 0


def _claim(args: argparse.Namespace) -> int:
    config = _load(args.config, sys.stderr)
    if config is None:
        return 1
    from hubd.service.claim_code import print_claim

    return print_claim(config, sys.stdout)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _omemo_fingerprint(args: argparse.Namespace) -> int:
    config = _load(args.config, sys.stderr)
    if config is None:
        return 1
    if not config.omemo.enabled:
        print("OMEMO is off (omemo: enabled: false, or pip install 'hubd[omemo]')", file=sys.stderr)
        return 1
    from hubd.errors import OmemoUnavailable
    from hubd.xmpp.omemo_store import fingerprint, stored_identity_key

    try:
        key = stored_identity_key(config.state_dir)
    except OmemoUnavailable as err:
        print(err, file=sys.stderr)
        return 1
    if key is None:
        print(
            f"no OMEMO identity in {config.state_dir} yet: hubd makes it at its first connection",
            file=sys.stderr,
        )
        return 1
    print(f"{config.xmpp.jid.split('/')[0]}: {fingerprint(key)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    setup_logging("debug" if args.verbose else "info")
    config = _load(args.config, sys.stderr)
    if config is None:
        logging.getLogger("hubd").error("refusing to start: the configuration has errors")
        return EXIT_CONFIG
    if not args.verbose:
        setup_logging(config.log_level)
    from hubd.service.app import App

    async def run() -> int:
        return await App(config).run()

    # uvloop when installed (the ``uvloop`` extra), unless HUBD_LOOP=asyncio: it
    # costs about 2 MB of resident memory and gave no measurable gain on loopback.
    if os.environ.get("HUBD_LOOP", "").lower() == "asyncio":
        return asyncio.run(run())
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run())


def _drivers(_args: argparse.Namespace) -> int:
    registry = DriverRegistry()
    common = set(DriverConfig.model_fields)
    for kind in registry.kinds():
        try:
            cls = registry.load(kind)
        except BrokenPlugin as err:  # a broken plug-in must not hide the others
            print(f"{kind}\n  broken: {err}\n")
            continue
        print(kind)
        print(f"  {cls.summary()}")
        print("  options:")
        _print_options(cls.config_model, common)
        print("  fields:")
        for spec in (*cls.static_fields,):
            unit = f" [{spec.unit}]" if spec.unit else ""
            access = "writable" if spec.writable else "read-only"
            print(f"    {spec.name}: {spec.type.value}{unit}, {access}")
        print("    online: boolean, read-only (every device)")
        print()
    return 0


def _print_options(model: type[BaseModel], skip: set[str]) -> None:
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        required = info.is_required()
        default = "required" if required else f"default {info.default!r}"
        annotation = getattr(info.annotation, "__name__", str(info.annotation))
        text = f"    {name} ({annotation}, {default})"
        if info.description:
            text += f": {info.description}"
        print(text)
