#!/usr/bin/env bash
# Installs the Debian packages fmn needs, only those missing. Idempotent.
set -euo pipefail

# command -> package that provides it
declare -A wanted=(
  [flock]=util-linux
  [ss]=iproute2
  [pkg-config]=pkg-config
  [c++]=g++
  [openssl]=openssl
  [ngircd]=ngircd   # the IRC server of the deliver-irc tests (/usr/sbin/ngircd)
  [chromium]=chromium   # the headless browser of the preferences page test (tests/browser)
)
missing=()
for cmd in "${!wanted[@]}"; do
  # /usr/sbin is not on every user's PATH (ngircd lives there).
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${wanted[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "==> installing system packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
