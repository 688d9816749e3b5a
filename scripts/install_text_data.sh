#!/usr/bin/env bash
# Install the Debian packages the language track reads its text from: the KJV and WEB Bibles (SWORD modules,
# exported with diatheke), WordNet 3.0, and apertium's English-Spanish pair (rule-based back-translation).
# Skips what is installed; without apt (or root) it says what to install and fails.
set -euo pipefail
PACKAGES=(sword-text-kjv sword-text-web diatheke wordnet-base wordnet-sense-index apertium apertium-eng-spa)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing text data: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "error: the language track needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
