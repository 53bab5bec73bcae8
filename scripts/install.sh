#!/usr/bin/env bash
# Installs lectern as a systemd service on a Debian classroom PC, from a clone of this repository.
# Safe to run again: an upgrade replaces the app, keeps the configuration and the recordings.
#
#   sudo bash scripts/install.sh [--prefix DIR] [--no-start]
#
# What it does:
#   - Debian packages: ffmpeg, alsa-utils (amixer, for a microphone's gain) (and, to build, what scripts/setup.sh needs); Node.js >= 20.19 must
#     be installed already, outside any home directory (the service has ProtectHome=yes);
#   - builds this checkout when dist/ is missing (scripts/setup.sh);
#   - the system user and group "lectern", in the groups audio and video (and render, for VAAPI);
#   - the app with its production node_modules in PREFIX (default /opt/lectern), replaced in one
#     rename, and the command /usr/local/bin/lectern;
#   - /etc/lectern/config.yaml from `lectern config init` when there is none (root:lectern 0640,
#     agent.dataDir set to /var/lib/lectern), and /etc/lectern/secrets (lectern, 0700) for the
#     camera and storage password files;
#   - /var/lib/lectern (lectern, 0750): database, recordings, packages;
#   - the unit /etc/systemd/system/lectern.service, enabled and (re)started. Without systemd as
#     PID 1 (a container, a chroot) it says so and leaves that step to you.
#
# DESTDIR=/some/dir installs below that directory instead of / (for packaging and the tests): no
# user is created, nothing is chowned, systemctl is not called.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$PWD"

PREFIX=/opt/lectern
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "install: unknown option $1 (expected --prefix DIR, --no-start)" >&2; exit 1 ;;
  esac
done
case "$PREFIX" in
  /*) PREFIX="${PREFIX%/}" ;;
  *) echo "install: --prefix must be an absolute path, got $PREFIX" >&2; exit 1 ;;
esac

ROOT="${DESTDIR:-}"
ROOT="${ROOT%/}"
USER_NAME=lectern
CONF_DIR=/etc/lectern
STATE_DIR=/var/lib/lectern
UNIT_PATH=/etc/systemd/system/lectern.service
CLI_LINK=/usr/local/bin/lectern

say() { echo "install: $*"; }
die() { echo "install: $*" >&2; exit 1; }
# Ownership needs the real user; a DESTDIR tree is owned by whoever packages it.
own() { if [ -z "$ROOT" ]; then chown "$@"; fi; }

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo bash scripts/install.sh), or set DESTDIR to install into a folder"
fi

# ---- Debian packages and Node --------------------------------------------------------------------
need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
# amixer sets a local microphone's capture gain (lectern records without it, with a warning)
command -v amixer >/dev/null 2>&1 || need_apt+=(alsa-utils)
if [ "${#need_apt[@]}" -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

NODE="$(command -v node || true)"
[ -n "$NODE" ] || die "Node.js >= 20.19 is required (Debian's nodejs package, or NodeSource)"
NODE="$(readlink -f "$NODE")"
"$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js >= 20.19 is required, found $("$NODE" --version) at $NODE"
case "$NODE" in
  /root/*|/home/*|/run/user/*) die "Node.js is at $NODE, inside a home directory the service cannot see (ProtectHome=yes); install it system-wide" ;;
esac

# ---- build ------------------------------------------------------------------------------------------
if [ ! -f "$SRC/dist/cli/main.js" ] || [ ! -d "$SRC/node_modules/better-sqlite3" ]; then
  say "this checkout is not built yet; running scripts/setup.sh"
  bash "$SRC/scripts/setup.sh"
fi

# ---- user -------------------------------------------------------------------------------------------
if [ -z "$ROOT" ]; then
  if getent passwd "$USER_NAME" >/dev/null; then
    say "user $USER_NAME exists"
  else
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
      --comment "lectern recording agent" "$USER_NAME"
    say "created the system user $USER_NAME"
  fi
  groups=(audio video)
  getent group render >/dev/null && groups+=(render)
  usermod -a -G "$(IFS=,; echo "${groups[*]}")" "$USER_NAME"
  say "user $USER_NAME is in the groups ${groups[*]}"
else
  say "DESTDIR is set: not creating the user $USER_NAME"
fi

# ---- the app ----------------------------------------------------------------------------------------
# A fingerprint of what gets installed; equal fingerprints mean nothing to copy.
stamp="$(cd "$SRC" && find bin dist schemas systemd package.json package-lock.json README.md -type f -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
app="$ROOT$PREFIX"
if [ -f "$app/.install-stamp" ] && [ "$(cat "$app/.install-stamp")" = "$stamp" ] && [ -d "$app/node_modules" ]; then
  say "app: $PREFIX is up to date"
else
  say "app: installing into $PREFIX"
  mkdir -p "$(dirname "$app")"
  staging="$app.new"
  rm -rf "$staging"
  mkdir -p "$staging"
  (cd "$SRC" && cp -a bin dist schemas systemd package.json package-lock.json README.md node_modules "$staging/")
  # The checkout's node_modules was built here (better-sqlite3's native module included); keep
  # only the production packages, without touching the network.
  (cd "$staging" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
  find "$staging/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
  echo "$stamp" > "$staging/.install-stamp"
  chmod -R u=rwX,go=rX "$staging"
  own -R root:root "$staging"
  # Swap in one rename each: a running daemon keeps its open files until it restarts.
  rm -rf "$app.old"
  if [ -e "$app" ]; then mv "$app" "$app.old"; fi
  mv "$staging" "$app"
  rm -rf "$app.old"
fi
mkdir -p "$ROOT$(dirname "$CLI_LINK")"
ln -sfn "$PREFIX/bin/lectern" "$ROOT$CLI_LINK"

# ---- configuration, secrets, state ------------------------------------------------------------------
install -d -m 0750 "$ROOT$CONF_DIR"
own "root:$USER_NAME" "$ROOT$CONF_DIR"
conf="$ROOT$CONF_DIR/config.yaml"
if [ -e "$conf" ]; then
  say "keeping the existing $CONF_DIR/config.yaml"
else
  tmp_conf="$ROOT$CONF_DIR/.config.yaml.new"
  rm -f "$tmp_conf"
  trap 'rm -f "$tmp_conf"' EXIT
  "$app/bin/lectern" config init "$tmp_conf" >/dev/null
  # The example leaves dataDir to the default; the service keeps its data in its StateDirectory,
  # written out so that lectern commands run by hand find the same database.
  sed -i -E "s#^  (\# )?dataDir: .*#  dataDir: $STATE_DIR#" "$tmp_conf"
  grep -q "^  dataDir: $STATE_DIR\$" "$tmp_conf" || die "could not set agent.dataDir in the new configuration"
  "$app/bin/lectern" --config "$tmp_conf" config check >/dev/null
  chmod 0640 "$tmp_conf"
  own "root:$USER_NAME" "$tmp_conf"
  mv "$tmp_conf" "$conf"
  trap - EXIT
  say "wrote $CONF_DIR/config.yaml (edit it, then: lectern config check && lectern doctor)"
fi
chmod 0640 "$conf"
own "root:$USER_NAME" "$conf"
install -d -m 0700 "$ROOT$CONF_DIR/secrets"
own "$USER_NAME:$USER_NAME" "$ROOT$CONF_DIR/secrets"
install -d -m 0750 "$ROOT$STATE_DIR"
own "$USER_NAME:$USER_NAME" "$ROOT$STATE_DIR"

# ---- the unit ---------------------------------------------------------------------------------------
unit_tmp="$(mktemp)"
sed -e "s#^ExecStart=/opt/lectern/bin/lectern #ExecStart=$PREFIX/bin/lectern #" \
    -e "s#^Documentation=file:/opt/lectern/#Documentation=file:$PREFIX/#" "$app/systemd/lectern.service" > "$unit_tmp"
# bin/lectern starts with `#!/usr/bin/env node`: a node outside systemd's default PATH is named.
case "$(dirname "$NODE")" in
  /usr/local/sbin|/usr/local/bin|/usr/sbin|/usr/bin|/sbin|/bin) ;;
  *) sed -i "s#^ExecStart=#Environment=PATH=$(dirname "$NODE"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin\nExecStart=#" "$unit_tmp" ;;
esac
mkdir -p "$ROOT$(dirname "$UNIT_PATH")"
unit_changed=1
if [ -f "$ROOT$UNIT_PATH" ] && cmp -s "$unit_tmp" "$ROOT$UNIT_PATH"; then unit_changed=0; fi
install -m 0644 "$unit_tmp" "$ROOT$UNIT_PATH"
rm -f "$unit_tmp"
say "unit: $UNIT_PATH$([ "$unit_changed" = 1 ] && echo ' (installed)' || echo ' (unchanged)')"

if [ -n "$ROOT" ]; then
  say "DESTDIR is set: not calling systemctl"
elif [ ! -d /run/systemd/system ]; then
  say "systemd is not running here (not PID 1); on the classroom PC run: systemctl enable --now lectern"
else
  systemctl daemon-reload
  systemctl enable lectern.service >/dev/null
  if [ "$START" = 0 ]; then
    say "enabled; not started (--no-start): systemctl start lectern"
  elif systemctl is-active --quiet lectern.service; then
    # A recording running now continues as the same lecture after a few seconds' gap.
    systemctl restart lectern.service
    say "restarted lectern.service"
  else
    systemctl start lectern.service
    say "started lectern.service"
  fi
fi
say "done. Check the room with: lectern doctor"
