"""The demo: a real Prosody on loopback, demo accounts, and hubd on simulated hardware.

Run by ``./dev demo``.  Everything lives in ``.demo/`` (certificates, Prosody's
data, hubd's config and state); Ctrl-C stops it all.  Connect any XMPP client
to the printed account and talk to the hub.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from hubd.testing.prosody import ProsodyError, ProsodyServer, find_free_port
from hubd.testing.weather_station import WeatherStation

HUB_PASSWORD = "hub-demo-password"
USER = "you"
USER_PASSWORD = "demo"

DEVICES = """\
devices:
  - id: porch-light
    name: Porch light
    driver: gpio.output
    pin: 17
  - id: garden-pump
    name: Garden pump
    driver: gpio.output
    pin: 22
    active_high: false
  - id: front-door
    name: Front door
    driver: gpio.input
    pin: 27
    pull_up: true
  - id: fridge
    name: Fridge
    driver: ble.bthome
    address: "A4:C1:38:12:34:56"
  - id: bathroom
    name: Bathroom
    driver: ble.xiaomi_pvvx
    address: "A4:C1:38:02:83:F4"
  - id: garden
    name: Garden
    driver: ble.ruuvi
    address: "CB:B8:33:4C:88:4F"
  - id: computer
    name: This computer
    driver: system
  - id: weather
    name: Weather station
    driver: serial.lines
    port: {weather_port}
    format: json
    fields:
      temperature: {{unit: "°C"}}
      humidity: {{unit: "%"}}
"""


def _ble_recording() -> Path:
    """The recorded advertisements that ship with the BLE drivers (found, not imported)."""
    spec = importlib.util.find_spec("drivers.ble")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the BLE drivers are not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "samples" / "demo.jsonl"


def main(argv: list[str] | None = None) -> int:
    """Start Prosody and hubd, print how to connect, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="./dev demo", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="working folder")
    parser.add_argument("--port", type=int, default=0, help="XMPP port (default: 5222 if free)")
    args = parser.parse_args(argv)
    workdir: Path = args.dir.resolve()
    port = args.port or (5222 if _free(5222) else find_free_port())
    server = ProsodyServer(workdir / "prosody", port=port)
    for user, password in (("hub", HUB_PASSWORD), (USER, USER_PASSWORD)):
        server.register(user, password)
    try:
        server.start()
    except ProsodyError as err:
        print(f"demo: Prosody did not start: {err}", file=sys.stderr)
        return 1
    # The other end of a serial cable: what an Arduino would print.
    (workdir / "hubd").mkdir(parents=True, exist_ok=True)
    station = WeatherStation(workdir / "hubd" / "ttyWEATHER")
    station.start()
    config = _write_config(workdir, server, station.link)
    hubd = subprocess.Popen([sys.executable, "-m", "hubd", "run", "-c", str(config)])
    print(_instructions(server), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        status = hubd.wait()  # returns early only if hubd stops by itself
        print(f"demo: hubd exited with status {status}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        hubd.send_signal(signal.SIGTERM)
        try:
            hubd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hubd.kill()
        station.stop()
        server.stop()
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_config(workdir: Path, server: ProsodyServer, weather_port: Path) -> Path:
    hubdir = workdir / "hubd"
    hubdir.mkdir(parents=True, exist_ok=True)
    password = hubdir / "xmpp.password"
    password.write_text(HUB_PASSWORD + "\n")
    os.chmod(password, 0o600)
    config = hubdir / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            # Written by ./dev demo; see config.example.yaml for every key.
            xmpp:
              jid: {server.jid("hub")}
              password_file: xmpp.password
              server: {server.host}
              port: {server.port}
              ca_file: {server.ca_file}
            access:
              owners: [{server.jid(USER)}]
            state_dir: state
            gpio:
              pin_factory: mock
            ble:
              replay: {_ble_recording()}  # recorded sensors, played again and again
              loop: true
            """
        )
        + DEVICES.format(weather_port=weather_port)
    )
    return config


def _instructions(server: ProsodyServer) -> str:
    return textwrap.dedent(
        f"""
        ================================================================
         hubd demo is running (Ctrl-C stops it).

         In any XMPP client (Gajim, Psi, Profanity, Dino, Conversations),
         add an account:
             JID:       {server.jid(USER)}
             password:  {USER_PASSWORD}
             server:    {server.host}   port: {server.port}
         The server's certificate comes from a throwaway CA
         ({server.ca_file}): accept it when the client asks.

         Then add the contact {server.jid("hub")}: the hub approves you
         (you are its owner) and shows online with its device count.
         Write to it: help, list, read fridge, set porch-light on,
         watch weather temperature, watching, unwatch weather,
         set weather send hello (a line to the serial weather station).
         Gajim, Psi and Profanity also offer its ad-hoc commands.
         Profanity: /connect {server.jid(USER)} server {server.host} port {server.port}
        ================================================================
        """
    )


if __name__ == "__main__":
    raise SystemExit(main())
