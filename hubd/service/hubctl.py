"""The ``hubctl`` command: read, set and watch a hub from a shell, a cron job or a script.

What mosquitto_pub and mosquitto_sub are to MQTT: a client of the machine
interface only (XEP-0323 readouts, XEP-0325 control, IoT events, XEP-0326
browsing), so it also works against other concentrators.  Parsing and help
live here; the commands in ``hubctl_commands``, the account in
``hubctl_account``, the printing in ``hubctl_output``, the XMPP in
``hubd/xmpp/hubctl_client.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from hubd import __version__
from hubd.errors import HubctlError, HubRefused, UsageError
from hubd.service import hubctl_commands as commands
from hubd.service.hubctl_account import AccountFlags, resolve_account, terminal_prompt
from hubd.service.hubctl_names import parse_device
from hubd.xmpp.hubctl_client import HubSession

#: The resource a bare hub JID gets: the one hubd uses unless its config names another.
HUB_RESOURCE = "hubd"
DEFAULT_TIMEOUT = 10.0

EXIT_STATUS = """\
exit status:
  0  done
  1  the hub refused or failed (forbidden, not found, bad value, a device that
     could not be read, no answer within --timeout); the reason is on stderr
  2  usage error (arguments, options, account settings)
  3  cannot connect to the server or log in
"""

ACCOUNT = """\
account:
  Each setting comes from the first of: the option, the environment
  (HUBCTL_JID, HUBCTL_PASSWORD, HUBCTL_SERVER, HUBCTL_PORT, HUBCTL_CA_FILE),
  ~/.config/hubctl/config.yaml (jid, password_file, server, port, ca_file).
  The password never goes on the command line: --password-file, HUBCTL_PASSWORD,
  the file's password_file, or a prompt on a terminal.

HUB is the hub's JID; a bare JID (hub@example.org) means its resource /hubd.
DEVICE is a device of the hub (porch-light), or of a remote hub it lists in
its remotes: (garage/door: the remote's id, a slash, the device).
"""

JSON_NOTE = """\
--json prints one object per value per line:
  {"device": ..., "field": ..., "value": ..., "type": ..., "unit": ..., "time": ...}
values typed (numbers, booleans, strings), time in ISO 8601 UTC.
"""


def _text(body: str) -> str:
    return textwrap.dedent(body).strip("\n") + "\n"


COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (one line, description, examples)
    "list": (
        "every device with its latest values",
        """\
        List every device of HUB (named as the hub's XEP-0326 tree names them)
        with its latest values, or why it has none; then the devices of each
        remote hub it lists, under the remote's id (garage/door).  A device
        that cannot be read (a remote hub offline included) makes the status 1.""",
        """\
        hubctl list hub@example.org
        hubctl --json list hub@example.org > devices.jsonl""",
    ),
    "read": (
        "a momentary readout (all devices without DEVICE)",
        """\
        Read the current values of DEVICE (only the FIELDs named, if any), or of
        every device (the remote hubs' included).  One line per value: device,
        field, value with its unit, and its age.  A FIELD the device does not
        have, or a device that cannot be read, makes the status 1.""",
        """\
        hubctl read hub@example.org weather temperature
        hubctl read hub@example.org garage/door
        hubctl --json read hub@example.org weather >> weather.jsonl""",
    ),
    "set": (
        "XEP-0325 set of one field; prints the value set",
        """\
        Set FIELD of DEVICE to VALUE, written as in chat: on/off, true/false,
        numbers (0.5), words of an enumeration, text.  The field's type is read
        from the device first.  Prints the value set.  A refusal (you may not
        control it, no such field, a value out of range) makes the status 1.""",
        """\
        hubctl set hub@example.org porch-light state on
        hubctl set hub@example.org garage/light state on
        hubctl set hub@example.org dimmer level 0.4""",
    ),
    "watch": (
        "print a device's events as they come",
        """\
        Subscribe to DEVICE's events (FIELD's only, if given) and print one line
        per event as it arrives (with --json: one object per value).  Stops
        after --count events, after --for seconds, or when interrupted
        (Ctrl-C, SIGTERM), and unsubscribes.  The hub keeps one subscription
        per account and device: a watch replaces the account's earlier one.""",
        """\
        hubctl watch hub@example.org front-door state --count 1
        hubctl watch hub@example.org weather temperature --changed-by 0.5 --for 3600""",
    ),
    "history": (
        "the stored values of a device over a period",
        """\
        Print the values the hub stored for DEVICE (FIELD only, if given) since
        --since ago, oldest first.""",
        """\
        hubctl history hub@example.org weather temperature --since 7d
        hubctl --json history hub@example.org front-door --since 1h""",
    ),
    "browse": (
        "the XEP-0326 tree: data sources and their devices",
        """\
        Walk HUB's concentrator tree: each data source, indented under its parent,
        with its devices (type, whether they can be read and controlled, state).""",
        """\
        hubctl browse hub@example.org
        hubctl --json browse hub@example.org""",
    ),
}


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are :class:`UsageError` (status 2), not an exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def _positive(kind: type[float] | type[int]) -> Any:
    def convert(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
        return value

    convert.__name__ = kind.__name__
    return convert


def _amount(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return text


def _global_options(parser: argparse.ArgumentParser, *, again: bool) -> None:
    """The options every command takes, before the command or (``again``) after it."""
    default: Any = argparse.SUPPRESS if again else None
    group = parser.add_argument_group("account and output")
    group.add_argument("--jid", default=default, help="the account to log in as")
    group.add_argument(
        "--password-file",
        type=Path,
        default=default,
        metavar="FILE",
        help="a file whose first line is the password",
    )
    group.add_argument(
        "--server",
        default=default,
        metavar="HOST",
        help="the XMPP server (default: the JID's domain)",
    )
    group.add_argument(
        "--port", type=_positive(int), default=default, metavar="N", help="its port (5222)"
    )
    group.add_argument(
        "--ca-file",
        type=Path,
        default=default,
        metavar="FILE",
        help="a CA certificate (PEM) to trust",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if again else False,
        help="one JSON object per value per line",
    )
    group.add_argument(
        "--timeout",
        type=_positive(float),
        default=argparse.SUPPRESS if again else DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the server and the hub (default {DEFAULT_TIMEOUT:g})",
    )


def build_parser() -> _Parser:
    """The whole command line, with a man-page style ``--help`` per command."""
    parser = _Parser(
        prog="hubctl",
        description="Read, set and watch a hubd (or any XEP-0323/0325 concentrator) from a shell.",
        epilog=f"{ACCOUNT}\n{JSON_NOTE}\n{EXIT_STATUS}\n"
        "hubctl COMMAND --help describes each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"hubctl (hubd) {__version__}")
    _global_options(parser, again=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (line, description, examples) in COMMANDS.items():
        sub = subparsers.add_parser(
            name,
            help=line,
            description=_text(description),
            epilog=f"examples:\n{textwrap.indent(_text(examples), '  ')}\n{EXIT_STATUS}\n{ACCOUNT}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        sub.add_argument("hub", metavar="HUB", help="the hub's JID")
        _command_arguments(name, sub)
        _global_options(sub, again=True)
    return parser


def _command_arguments(name: str, sub: argparse.ArgumentParser) -> None:
    if name == "read":
        sub.add_argument(
            "device", metavar="DEVICE", nargs="?", help="a device id, or remote/device"
        )
        sub.add_argument("fields", metavar="FIELD", nargs="*", help="fields of DEVICE")
    elif name == "set":
        sub.add_argument("device", metavar="DEVICE", help="a device id, or remote/device")
        sub.add_argument("field", metavar="FIELD", help="the field to set")
        sub.add_argument("value", metavar="VALUE", help="on/off, true/false, a number, text")
    elif name in ("watch", "history"):
        sub.add_argument("device", metavar="DEVICE", help="a device id, or remote/device")
        sub.add_argument("field", metavar="FIELD", nargs="?", help="only this field")
    if name == "watch":
        sub.add_argument(
            "--changed-by",
            type=_amount,
            metavar="X",
            help="only changes of FIELD by at least X from the last reported value",
        )
        sub.add_argument("--count", type=_positive(int), metavar="N", help="stop after N events")
        sub.add_argument(
            "--for",
            dest="duration",
            type=_positive(float),
            metavar="SECONDS",
            help="stop after SECONDS",
        )
    if name == "history":
        sub.add_argument(
            "--since",
            type=commands.parse_period,
            default=commands.parse_period("24h"),
            metavar="PERIOD",
            help="how far back: 30min, 1h, 24h (default), 7d, 30d",
        )


def _refuse_password_flag(argv: Sequence[str]) -> None:
    # argparse would echo the unknown option and its value (the password) to stderr.
    for arg in argv:
        if arg == "--" or not arg.startswith("-"):
            continue
        if arg.split("=", 1)[0] in ("--password", "--pass", "--pw", "-p"):
            raise UsageError(
                "passwords never go on the command line (ps and shell history show them): "
                "use --password-file FILE, HUBCTL_PASSWORD, or password_file in "
                "~/.config/hubctl/config.yaml"
            )


def hub_jid(text: str) -> str:
    """The hub's full JID: a bare ``user@domain`` gets hubd's resource."""
    if not text or any(c.isspace() for c in text):
        raise UsageError(f"not a JID: {text!r}")
    if "@" in text and "/" not in text:
        return f"{text}/{HUB_RESOURCE}"
    return text


async def run(args: argparse.Namespace, session: HubSession, console: commands.Console) -> int:
    """Carry out the parsed command over an open session."""
    hub = args.hub
    if args.command == "list":
        return await commands.list_devices(session, console, hub)
    if args.command == "browse":
        return await commands.browse(session, console, hub)
    if args.command == "read":
        device = None if args.device is None else parse_device(args.device)
        return await commands.read(session, console, hub, device, args.fields)
    # set, watch and history name one device: ``porch-light``, or a remote's ``garage/door``.
    one = parse_device(args.device)
    if args.command == "set":
        return await commands.set_value(session, console, hub, one, args.field, args.value)
    if args.command == "watch":
        return await commands.watch(
            session,
            console,
            hub,
            one,
            args.field,
            changed_by=args.changed_by,
            count=args.count,
            duration=args.duration,
        )
    return await commands.history(session, console, hub, one, args.field, args.since)


async def _session(args: argparse.Namespace, account: Any, console: commands.Console) -> int:
    async with HubSession(account, args.timeout) as session:
        return await run(args, session, console)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line (UsageError when it is wrong)."""
    _refuse_password_flag(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        raise UsageError(f"no command\n{parser.format_usage().rstrip()}")
    args.hub = hub_jid(args.hub)
    if getattr(args, "device", None) is not None:
        parse_device(args.device)  # a bad name is a usage error before any connection
    if args.command == "watch" and args.changed_by is not None and args.field is None:
        raise UsageError("--changed-by needs a FIELD")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hubctl`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Reasons are hubctl's to give, once, on stderr; slixmpp would repeat them.
    logging.basicConfig(level=logging.WARNING, format="hubctl: %(message)s")
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    console = commands.Console(sys.stdout, sys.stderr, as_json=False)
    try:
        args = parse(arguments)
        console.as_json = args.json
        flags = AccountFlags(args.jid, args.password_file, args.server, args.port, args.ca_file)
        account = resolve_account(flags, prompt=terminal_prompt())
        status = asyncio.run(_session(args, account, console))
    except HubRefused as err:
        console.warn(_refusal_text(err))
        status = err.exit_status
    except HubctlError as err:
        console.warn(str(err))
        status = err.exit_status
    except KeyboardInterrupt:
        status = 130
    if console.broken_pipe:
        # The reader left (``| head``): nothing more to flush, and no traceback at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


def _refusal_text(err: HubRefused) -> str:
    if err.condition in ("service-unavailable", "recipient-unavailable") and not err.text:
        return (
            f"the hub is not online, or does not answer this ({err.condition}); "
            f"a bare JID means the resource /{HUB_RESOURCE}"
        )
    return f"the hub refused: {err}"
