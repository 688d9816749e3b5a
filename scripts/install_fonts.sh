#!/usr/bin/env bash
# Install the Debian font packages the embedded vision benchmark renders digits from.
# Skips what is installed; without apt (or root) it says what to install and fails.
set -euo pipefail
PACKAGES=(fonts-dejavu fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-cmu fonts-texgyre
  fonts-linuxlibertine fonts-noto-core fonts-dkg-handwriting fonts-bwht fonts-breip fonts-femkeklaver
  fonts-humor-sans fonts-kristi fonts-dancingscript fonts-rufscript fonts-sjfonts fonts-ecolier-court fonts-aenigma)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing fonts: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "error: the benchmark needs these Debian font packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
