#!/usr/bin/env bash
# System packages Switchboard needs on a fresh Debian/Ubuntu machine.
#   cmake          builds the bundled libopus (opus crate)
#   espeak-ng sox  only to regenerate the recorded calls (scripts/make-calls.sh)
#   bc             used by scripts/make-calls.sh
set -euo pipefail
need=()
for p in cmake espeak-ng sox bc; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}"
