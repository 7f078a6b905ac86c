#!/usr/bin/env bash
# Install (or upgrade) hubd as a system service on Raspberry Pi OS 64-bit, Bookworm or Trixie.
#
#   sudo scripts/install-pi.sh [SOURCE]
#
# SOURCE is what pip installs: this repository (the default) or a built wheel.
# The first run asks for the hub's JID, its password and the owner's JID (or
# takes them from HUBD_JID, HUBD_PASSWORD, HUBD_OWNER) and writes a small
# /etc/hubd/config.yaml with one device, the Pi itself; add yours from
# /etc/hubd/config.example.yaml, then `sudo systemctl reload hubd`.  Later runs
# upgrade the program and keep the configuration and the password.
#
# What it does: apt installs python3-venv and the distribution's python3-lgpio;
# a system user `hubd` (groups gpio, dialout, bluetooth); a venv in
# /opt/hubd/venv that sees the system's lgpio; /etc/hubd/xmpp.password (root
# only: systemd hands it to hubd as a credential); the unit in
# /etc/systemd/system/hubd.service, enabled and started.  Undo: scripts/uninstall-pi.sh.
# On a plain Debian (no python3-lgpio in its archive) lgpio comes from PyPI into
# the venv instead; without a running systemd (a chroot, a container, an image
# being prepared) the unit is installed but nothing is started, and it says so.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
SOURCE=${1:-$HERE}
PREFIX=/opt/hubd
CONF_DIR=/etc/hubd
UNIT=/etc/systemd/system/hubd.service
GROUPS_NEEDED=(gpio dialout bluetooth)

die() { echo "install-pi: $*" >&2; exit 1; }
say() { echo "install-pi: $*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
[ -e "$SOURCE" ] || die "$SOURCE does not exist"
[ -f "$HERE/systemd/hubd.service" ] || die "run from a hubd checkout (systemd/hubd.service is missing)"
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  case "${VERSION_CODENAME:-}" in
    bookworm | trixie) ;;
    *) say "warning: tested on Bookworm and Trixie, this is ${PRETTY_NAME:-unknown}" ;;
  esac
fi
[ "$(uname -m)" = aarch64 ] || say "warning: made for 64-bit Raspberry Pi OS, this is $(uname -m)"

say "installing Debian packages"
apt-get update -q
# python3-lgpio is Raspberry Pi OS's (and Ubuntu's); a plain Debian's archive lacks
# it, and the venv gets PyPI's lgpio wheel instead (see "lgpio from PyPI" below).
debian_packages=(python3-venv)
lgpio_from_pypi=""
if [ -n "$(apt-cache madison python3-lgpio 2>/dev/null)" ]; then
  debian_packages+=(python3-lgpio)
else
  lgpio_from_pypi=yes
  say "python3-lgpio is not in this system's package archive (plain Debian, not Raspberry Pi OS): lgpio will come from PyPI"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debian_packages[@]}"

# Raspberry Pi OS has these groups; a plain Debian may lack gpio.  systemd refuses
# to start a unit whose SupplementaryGroups= names a missing group.
for group in "${GROUPS_NEEDED[@]}"; do
  getent group "$group" >/dev/null || groupadd --system "$group"
done
if ! id hubd >/dev/null 2>&1; then
  say "creating the system user hubd"
  useradd --system --user-group --home-dir /var/lib/hubd --no-create-home \
    --shell /usr/sbin/nologin --comment "hubd daemon" hubd
fi
usermod --append --groups "$(IFS=,; echo "${GROUPS_NEEDED[*]}")" hubd

say "installing hubd into $PREFIX/venv"
# --system-site-packages: lgpio comes from the distribution (PyPI's wheels do not
# cover every Python on a Pi).  constraints.txt: the versions CI tested (it pins,
# it installs nothing: the test tools it names stay off the Pi).
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --upgrade \
  -c "$HERE/constraints.txt" "$SOURCE"

# lgpio from PyPI, where the distribution has no python3-lgpio.  Upstream's lgpio
# wheels cover CPython 3.9-3.12 on aarch64 (Bookworm's 3.11); for 3.13 and later
# (Trixie) Adafruit builds the same source as adafruit-lgpio: the same `import
# lgpio` that gpiozero's lgpio pin factory does.  Wheels only: the source
# distribution needs SWIG and a compiler.  Without it only GPIO devices go offline.
LGPIO_VERSION=0.2.2.0
if [ -n "$lgpio_from_pypi" ] && ! "$PREFIX/venv/bin/python" -c "import lgpio" 2>/dev/null; then
  lgpio_wheel=lgpio
  if "$PREFIX/venv/bin/python" -c "import sys; sys.exit(sys.version_info < (3, 13))"; then
    lgpio_wheel=adafruit-lgpio
  fi
  say "installing $lgpio_wheel $LGPIO_VERSION from PyPI into $PREFIX/venv (fallback for the missing python3-lgpio)"
  if ! "$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: \
    "$lgpio_wheel==$LGPIO_VERSION"; then
    say "warning: no $lgpio_wheel wheel for this Python and machine: GPIO devices will stay offline" \
      "(\"pin factory 'lgpio' is not installed\") until lgpio is installed in $PREFIX/venv"
  fi
fi

install -d -m 0750 -o root -g hubd "$CONF_DIR"
install -m 0640 -o root -g hubd "$HERE/config.example.yaml" "$CONF_DIR/config.example.yaml"

# OMEMO, end-to-end encrypted chat (README, "Encryption"): the omemo extra where it
# installs.  Its xeddsa has wheels for aarch64 and x86_64 only; elsewhere (armv7l:
# 32-bit Raspberry Pi OS) pip builds it against Debian's libxeddsa and libsodium.
# HUBD_OMEMO=no skips it.  Without the extra hubd runs as before, chat unencrypted.
if [ "${HUBD_OMEMO:-yes}" != no ]; then
  case "$(uname -m)" in
    aarch64 | x86_64) ;;
    *)
      say "$(uname -m): no xeddsa wheel for OMEMO, building it against Debian's libxeddsa"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        libxeddsa-dev libsodium-dev libffi-dev python3-dev gcc || true
      ;;
  esac
  if "$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --upgrade \
    -c "$HERE/constraints.txt" "$SOURCE[omemo]"; then
    say "OMEMO installed: chat with the hub is end-to-end encrypted when the client encrypts"
  else
    say "warning: the omemo extra does not install on $(uname -m): hubd runs, but its chat" \
      "is not end-to-end encrypted (README, \"Encryption\", says what a 32-bit Pi needs)"
  fi
fi

ask() {  # ask VAR PROMPT [silent]: from the environment, else from the terminal
  local var=$1 prompt=$2 silent=${3:-} value=${!1:-}
  if [ -z "$value" ]; then
    [ -t 0 ] || die "set $var (no terminal to ask on)"
    if [ -n "$silent" ]; then read -r -s -p "$prompt: " value; echo; else read -r -p "$prompt: " value; fi
  fi
  [ -n "$value" ] || die "$var is empty"
  printf -v "$var" '%s' "$value"
}

if [ ! -s "$CONF_DIR/xmpp.password" ]; then
  ask HUBD_PASSWORD "the hub account's XMPP password" silent
  (umask 077 && printf '%s' "$HUBD_PASSWORD" >"$CONF_DIR/xmpp.password")
fi
chown root:root "$CONF_DIR/xmpp.password"
chmod 0600 "$CONF_DIR/xmpp.password"

if [ ! -e "$CONF_DIR/config.yaml" ]; then
  ask HUBD_JID "the hub's JID (e.g. hub@example.org)"
  ask HUBD_OWNER "your own JID, the owner (e.g. alice@example.org)"
  say "writing $CONF_DIR/config.yaml"
  (umask 027 && cat >"$CONF_DIR/config.yaml" <<EOF
# hubd configuration; every key is described in config.example.yaml next to this file.
# After editing: sudo systemctl reload hubd (a broken file is refused, the old one kept).
xmpp:
  jid: $HUBD_JID
  # The password comes from /etc/hubd/xmpp.password as a systemd credential.
access:
  owners: [$HUBD_OWNER]
state_dir: /var/lib/hubd
gpio:
  pin_factory: lgpio
devices:
  - id: pi
    name: Raspberry Pi
    driver: system
EOF
  )
  chown root:hubd "$CONF_DIR/config.yaml"
fi

say "checking the configuration"
# hubd reads the password as systemd will hand it over: a credential named xmpp-password.
creds=$(mktemp -d)
trap 'rm -rf "$creds"' EXIT
install -m 0400 "$CONF_DIR/xmpp.password" "$creds/xmpp-password"
CREDENTIALS_DIRECTORY=$creds "$PREFIX/venv/bin/hubd" check -c "$CONF_DIR/config.yaml"

install -m 0644 "$HERE/systemd/hubd.service" "$UNIT"
# /run/systemd/system exists only while systemd runs as init (sd_booted(3)).
if [ -d /run/systemd/system ]; then
  say "installing and starting the service"
  systemctl daemon-reload
  systemctl enable hubd
  systemctl restart hubd
  systemctl --no-pager status hubd || true
  say "done.  Logs: journalctl -u hubd -f    Status: systemctl status hubd"
else
  # A chroot, a container or an SD-card image being prepared: leave an installed,
  # checkable hubd that the first boot starts, and start nothing here.
  say "systemd is not running here (a chroot or a container?): installed $UNIT but started nothing"
  if command -v systemctl >/dev/null 2>&1; then
    systemctl enable hubd  # works offline: the link that makes the next boot start hubd
  else
    say "systemctl is not installed: enable the unit once systemd runs: systemctl enable hubd"
  fi
  say "with systemd running this step would run: systemctl daemon-reload; systemctl enable hubd; systemctl restart hubd"
  say "done (installed, not started).  Check it as above: CREDENTIALS_DIRECTORY=<a directory" \
    "holding xmpp-password> $PREFIX/venv/bin/hubd check -c $CONF_DIR/config.yaml"
fi
