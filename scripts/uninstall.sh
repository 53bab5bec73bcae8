#!/usr/bin/env bash
# Removes the lectern service and app installed by scripts/install.sh. Recordings, the database
# (/var/lib/lectern) and the configuration with its secrets (/etc/lectern) stay, so a reinstall
# carries on where this one stopped, unless --purge is given.
#
#   sudo bash scripts/uninstall.sh [--prefix DIR] [--purge]
#
#   --purge  also deletes /var/lib/lectern (every recording not yet published is lost),
#            /etc/lectern and the user lectern
#
# DESTDIR=/some/dir works as in install.sh.
set -euo pipefail

PREFIX=/opt/lectern
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "uninstall: unknown option $1 (expected --prefix DIR, --purge)" >&2; exit 1 ;;
  esac
done
case "$PREFIX" in
  /?*) PREFIX="${PREFIX%/}" ;;
  *) echo "uninstall: --prefix must be an absolute path other than /, got $PREFIX" >&2; exit 1 ;;
esac

ROOT="${DESTDIR:-}"
ROOT="${ROOT%/}"
USER_NAME=lectern
CONF_DIR=/etc/lectern
STATE_DIR=/var/lib/lectern
UNIT_PATH=/etc/systemd/system/lectern.service
CLI_LINK=/usr/local/bin/lectern

say() { echo "uninstall: $*"; }

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  echo "uninstall: run as root (sudo bash scripts/uninstall.sh)" >&2
  exit 1
fi

if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  if systemctl list-unit-files lectern.service >/dev/null 2>&1; then
    # stop waits for the daemon's own shutdown: a running recording is closed cleanly first.
    systemctl disable --now lectern.service >/dev/null 2>&1 || true
    say "stopped and disabled lectern.service"
  fi
elif [ -z "$ROOT" ]; then
  say "systemd is not running here (not PID 1); nothing to stop"
fi

if [ -e "$ROOT$UNIT_PATH" ]; then
  rm -f "$ROOT$UNIT_PATH"
  say "removed $UNIT_PATH"
  if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
fi

if [ -L "$ROOT$CLI_LINK" ] && [ "$(readlink "$ROOT$CLI_LINK")" = "$PREFIX/bin/lectern" ]; then
  rm -f "$ROOT$CLI_LINK"
fi
if [ -e "$ROOT$PREFIX" ]; then
  # Only a folder install.sh made: it carries the stamp.
  if [ -f "$ROOT$PREFIX/.install-stamp" ]; then
    rm -rf "$ROOT$PREFIX" "$ROOT$PREFIX.new" "$ROOT$PREFIX.old"
    say "removed $PREFIX"
  else
    say "$PREFIX was not made by install.sh (no .install-stamp); left alone"
  fi
fi

if [ "$PURGE" = 1 ]; then
  rm -rf "$ROOT$STATE_DIR" "$ROOT$CONF_DIR"
  say "purged $STATE_DIR and $CONF_DIR"
  if [ -z "$ROOT" ] && getent passwd "$USER_NAME" >/dev/null; then
    userdel "$USER_NAME" && say "removed the user $USER_NAME"
  fi
else
  [ -e "$ROOT$STATE_DIR" ] && say "kept $STATE_DIR (recordings and database; --purge deletes it)"
  [ -e "$ROOT$CONF_DIR" ] && say "kept $CONF_DIR (configuration and secrets; --purge deletes it)"
fi
say "done"
