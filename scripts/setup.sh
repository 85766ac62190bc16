#!/usr/bin/env bash
# Everything a fresh Debian machine (as root) needs before the page or the tests run:
# Debian packages, npm packages from the lock file, and the guest images (cached under
# ~/.cache/trapdoor, keyed by recipe, so a second run takes seconds). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Browser for Playwright (it may not download its own here), QEMU to check the images,
# nasm for the CPU's test programs, tcpdump to check the pcap captures and curl as the
# hostfwd test's client. The image recipes install their own build tools.
packages=(chromium qemu-system-x86 nasm ca-certificates tcpdump curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || echo "setup: apt-get update reported errors; trying the install anyway"
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages exactly as locked; skipped when node_modules already matches the lock.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

npm run --silent images
