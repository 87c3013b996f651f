#!/bin/sh
# Install the Debian packages named in $PACKAGES that are not installed yet.
# Root runs apt-get directly; others go through sudo; without either, say what is missing.
set -eu
missing=""
for pkg in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $pkg"
  fi
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing system packages:$missing" >&2
  echo "This is not a Debian/Ubuntu system: install the equivalents of those packages yourself." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "Missing system packages:$missing" >&2
  echo "Run as root, or install sudo, or install them yourself: apt-get install$missing" >&2
  exit 1
fi
echo "Installing system packages:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
