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
DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv python3-lgpio

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

say "installing and starting the service"
install -m 0644 "$HERE/systemd/hubd.service" "$UNIT"
systemctl daemon-reload
systemctl enable hubd
systemctl restart hubd
systemctl --no-pager status hubd || true
say "done.  Logs: journalctl -u hubd -f    Status: systemctl status hubd"
