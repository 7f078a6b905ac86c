"""What the QR code of ``hubd claim`` costs, against the commands that never draw one.

segno is imported lazily, by ``hubd claim`` only; this measures that promise
and its price, each against a baseline timed in the same run (interleaved):

* importing hubd's command line alone vs. with segno (what a lazy import saves
  every other command, ``hubd run`` included);
* ``hubd check`` vs. ``hubd claim`` on the same configuration (the whole
  command, config validation included, the QR code drawn).

    python bench/claim_cost.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
xmpp: {jid: hub@example.org, password_file: pw}
state_dir: state
discovery:
  registry: registry.example.org
  meta: {MAN: example.org, MODEL: hubd, CLASS: gateway, SN: "0001", V: 1.0}
"""


def _time(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    python = sys.executable
    with tempfile.TemporaryDirectory() as workdir:
        config = Path(workdir) / "config.yaml"
        config.write_text(CONFIG)
        (Path(workdir) / "pw").write_text("pw\n")
        pairs = {
            "import hubd.service.cli": (
                [python, "-c", "import hubd.service.cli"],
                [python, "-c", "import hubd.service.cli, segno"],
            ),
            "hubd check / hubd claim": (
                [python, "-m", "hubd", "check", "-c", str(config)],
                [python, "-m", "hubd", "claim", "-c", str(config)],
            ),
        }
        print(f"{'measure':32} {'baseline ms':>12} {'with QR ms':>12} {'ratio':>7}")
        for name, (baseline, measured) in pairs.items():
            _time(baseline), _time(measured)  # warm the page cache and the .pyc files
            base, with_qr = [], []
            for _ in range(rounds):
                base.append(_time(baseline))
                with_qr.append(_time(measured))
            b, m = statistics.median(base) * 1000, statistics.median(with_qr) * 1000
            print(f"{name:32} {b:12.1f} {m:12.1f} {m / b:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
