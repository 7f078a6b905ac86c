#!/usr/bin/env bash
# Remove what scripts/install-pi.sh installed.
#
#   sudo scripts/uninstall-pi.sh           stop and remove the service and the program;
#                                          keep /etc/hubd (config, password) and /var/lib/hubd (state)
#   sudo scripts/uninstall-pi.sh --purge   also remove those and the user hubd
#
# Debian packages (python3-venv, python3-lgpio) and the groups gpio, dialout and
# bluetooth stay: other programs use them.
set -euo pipefail

purge=no
case "${1:-}" in
  "") ;;
  --purge) purge=yes ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "uninstall-pi: run as root (sudo $0)" >&2; exit 1; }

if [ -e /etc/systemd/system/hubd.service ]; then
  systemctl disable --now hubd || true
  rm -f /etc/systemd/system/hubd.service
  rm -rf /etc/systemd/system/hubd.service.d
  systemctl daemon-reload
  systemctl reset-failed hubd 2>/dev/null || true
fi
rm -rf /opt/hubd
if [ "$purge" = yes ]; then
  rm -rf /etc/hubd /var/lib/hubd
  if id hubd >/dev/null 2>&1; then userdel hubd; fi
  echo "uninstall-pi: hubd, its configuration, password, state and user are removed"
else
  echo "uninstall-pi: hubd is removed; /etc/hubd and /var/lib/hubd are kept (--purge removes them)"
fi
