"""Emulated arm64 Debian roots for ``./dev check-arm64``: a Pi's userland on an x86 machine.

``debootstrap --arch=arm64`` builds a minimal Debian root once per release and
caches it (``HUBD_ARM64_CACHE``, default ``/var/cache/hubd-arm64``); binfmt_misc
hands its arm64 binaries to ``qemu-aarch64-static``.  Each check then runs in a
fresh overlay on that cached root, so the install under test always starts from
a clean system and a second check skips the slow debootstrap.  The downloads
(apt's .debs, pip's wheels) are cached beside it.  The overlay of the last check
stays in ``<cache>/<suite>/run`` for a look after a failure; with
``HUBD_ARM64_REUSE=1`` the tests run on that installed system again instead of
installing anew (for working on the tests themselves).

Every command runs in a private mount namespace (``unshare --mount``): the
overlay, /proc, /dev and the caches are mounted there and vanish with it, so an
interrupted check leaves no mount behind on the machine.  Needs root (CI runs as
root), ``debootstrap`` and ``qemu-user-static``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("HUBD_ARM64_CACHE", "/var/cache/hubd-arm64"))
# Debian 12 and 13: what Raspberry Pi OS Bookworm and Trixie are built on.
SUITES = ("bookworm", "trixie")
BINFMT = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")  # from qemu-user-static
COMPLETE = ".hubd-base-complete"
# The same PATH a root login on the Pi has; the rest of the environment is the test's.
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# pip inside the root trusts this machine's CA bundle (mounted there): where a
# proxy re-signs TLS with a local CA, as on the CI machines, the root's own
# bundle would refuse PyPI.  A Pi at home does not need it.
MACHINE_CA = "/run/machine-ca-certificates.crt"
# The CPU qemu emulates: a Raspberry Pi 4's.  qemu's default ("max") has pointer
# authentication, which Debian 13 builds use (-mbranch-protection) and qemu 7.2
# computes slowly: Trixie's `hubd drivers` took 19 s with it, 2.2 s without.
QEMU_CPU = os.environ.get("HUBD_ARM64_CPU", "cortex-a72")


def need_root_tools() -> None:
    """Fail (never skip: this suite only runs when asked for) unless the check can run here."""
    problems = []
    if os.geteuid() != 0:
        problems.append("it needs root (debootstrap, mount, chroot); CI runs as root")
    for tool in ("debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is missing (./dev check-arm64 installs it)")
    if not Path("/usr/bin/qemu-aarch64-static").exists():
        problems.append("qemu-aarch64-static is missing (Debian package qemu-user-static)")
    if problems:
        pytest.fail("the arm64 install check cannot run: " + "; ".join(problems))
    register_binfmt()


def register_binfmt() -> None:
    """Make the kernel run arm64 binaries through qemu, as the qemu-user-static package intends.

    The package registers its handlers through systemd-binfmt, which does not run
    in a container or a CI job; its own binfmt.d line ("F": the interpreter is
    opened now, so it also works inside a chroot) is written here instead.
    """
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
    handler = BINFMT / "qemu-aarch64"
    if not handler.exists():
        (BINFMT / "register").write_text(BINFMT_CONF.read_text().strip())
    if handler.read_text().splitlines()[0] != "enabled":
        handler.write_text("1")


def debian_mirror() -> str | None:
    """The Debian mirror this machine's apt uses, so the roots come from the same place.

    ``HUBD_DEBIAN_MIRROR`` overrides it; None leaves debootstrap's own default.
    """
    if mirror := os.environ.get("HUBD_DEBIAN_MIRROR"):
        return mirror
    sources = Path("/etc/apt")
    texts = [p.read_text() for p in sorted(sources.glob("sources.list.d/*.sources"))]
    for text in texts:  # deb822: "URIs: http://host/debian"
        for uris in re.findall(r"^URIs:\s*(.+)$", text, re.MULTILINE):
            for uri in uris.split():
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    one_line = [sources / "sources.list", *sorted(sources.glob("sources.list.d/*.list"))]
    for path in one_line:
        if path.exists():
            for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", path.read_text(), re.M):
                if match.group(1).rstrip("/").endswith("/debian"):
                    return match.group(1)
    return None


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace (none may be left before rm)."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def remove_tree(path: Path) -> None:
    """``rm -rf`` a root, refusing if anything is still mounted inside it."""
    if not path.exists():
        return
    if mounted := mounts_under(path):
        pytest.fail(f"refusing to remove {path}: still mounted there: {', '.join(mounted)}")
    shutil.rmtree(path)


def base_root(suite: str) -> Path:
    """The cached pristine arm64 root of ``suite``, built by debootstrap on first use."""
    top = CACHE / suite
    base = top / "base"
    if (base / COMPLETE).exists():
        return base
    top.mkdir(parents=True, exist_ok=True)
    partial = top / "base.partial"
    remove_tree(partial)
    remove_tree(base)
    mirror = debian_mirror()
    # minbase: what apt needs and little more; the install script brings the rest,
    # as on a fresh system.  In its own mount namespace: debootstrap mounts /proc
    # and /sys inside the target, and a killed debootstrap must not leave them.
    command = ["debootstrap", "--arch=arm64", "--variant=minbase", suite, str(partial)]
    command += [mirror] if mirror else []
    log = top / "debootstrap.log"
    with log.open("w") as out:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=3600,
            env={**os.environ, "QEMU_CPU": QEMU_CPU},
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        pytest.fail(f"debootstrap {suite} failed ({result.returncode}), see {log}:\n{tail}")
    (partial / COMPLETE).write_text(" ".join(command) + "\n")
    partial.rename(base)
    return base


# Run inside `unshare --mount`: $1 the base root, $2 the run directory, $3 the
# download cache, $4 the command for bash inside the root, the rest NAME=VALUE.
_ENTER = r"""
set -eu
base=$1 run=$2 cache=$3 command=$4
shift 4
root=$run/merged
mkdir -p "$run/upper" "$run/work" "$root" "$cache/apt/partial" "$cache/pip"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
mount --bind "$cache/apt" "$root/var/cache/apt/archives"
mkdir -p "$root/root/.cache/pip"
mount --bind "$cache/pip" "$root/root/.cache/pip"
touch "$root/run/machine-ca-certificates.crt"
mount --bind /etc/ssl/certs/ca-certificates.crt "$root/run/machine-ca-certificates.crt"
exec chroot "$root" /usr/bin/env -i "$@" /bin/bash -c "$command"
"""


@dataclass
class Arm64Root:
    """One throw-away arm64 system: an overlay on the cached root of ``suite``."""

    suite: str
    base: Path
    run_dir: Path

    @classmethod
    def fresh(cls, suite: str) -> Arm64Root:
        """A clean system: the cached root, with the previous check's changes dropped."""
        base = base_root(suite)
        run_dir = CACHE / suite / "run"
        remove_tree(run_dir)
        return cls(suite, base, run_dir)

    @classmethod
    def kept(cls, suite: str) -> Arm64Root | None:
        """The last check's system if its install succeeded (HUBD_ARM64_REUSE=1), else None."""
        run_dir = CACHE / suite / "run"
        base = CACHE / suite / "base"
        if (run_dir / "install-pi.out").exists() and (base / COMPLETE).exists():
            return cls(suite, base, run_dir)
        return None

    def path(self, inside: str) -> Path:
        """Where a path of the root lies on this machine, between two commands (upper layer)."""
        return self.run_dir / "upper" / inside.lstrip("/")

    def copy_checkout(self, checkout: Path, inside: str) -> None:
        """Put this checkout's files (tracked and new, not ignored ones) at ``inside``."""
        listing = subprocess.run(
            [
                "git",
                "-C",
                str(checkout),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout
        target = self.path(inside)
        for name in filter(None, listing.decode().split("\0")):
            source = checkout / name
            if source.is_file():  # a tracked file deleted in the work tree is skipped
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)

    def run(
        self, command: str, env: dict[str, str] | None = None, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` with bash as root inside the arm64 system; output captured."""
        variables = {"PATH": ROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
        variables["PIP_CERT"] = MACHINE_CA
        variables["QEMU_CPU"] = QEMU_CPU  # read by qemu-aarch64 for every arm64 program
        variables.update(env or {})
        cache = CACHE / self.suite / "downloads"
        return subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-c",
                _ENTER,
                "enter",
                str(self.base),
                str(self.run_dir),
                str(cache),
                command,
                *(f"{name}={value}" for name, value in variables.items()),
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
