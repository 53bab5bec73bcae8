#!/usr/bin/env bash
# Installs everything lectern needs on a fresh Debian machine: ffmpeg from Debian, then the
# pinned npm dependencies (better-sqlite3 builds from source when no prebuilt binary can be
# fetched), then the TypeScript build. Safe to run again.
#   --test  also installs the Debian packages of the test peers, listed one file per peer in
#           scripts/test-peers/*.apt (an RTSP camera, an S3 server, a browser...).
set -euo pipefail
cd "$(dirname "$0")/.."

with_test_peers=0
for arg in "$@"; do
  case "$arg" in
    --test) with_test_peers=1 ;;
    *) echo "setup: unknown option $arg (expected --test)" >&2; exit 1 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
# amixer sets a local microphone's capture gain (lectern records without it, with a warning)
command -v amixer >/dev/null 2>&1 || need_apt+=(alsa-utils)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if [ "$with_test_peers" = 1 ]; then
  for list in scripts/test-peers/*.apt; do
    [ -f "$list" ] || continue
    while read -r pkg _; do
      case "$pkg" in ''|'#'*) continue ;; esac
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
    done < "$list"
  done
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js >= 20.19 is required (https://nodejs.org or Debian's nodejs package)" >&2
  exit 1
fi

echo "setup: installing npm dependencies (pinned by package-lock.json)"
npm ci --no-audit --no-fund
echo "setup: building"
npm run build --silent
