#!/usr/bin/env bash
# Install the Debian font packages the embedded vision benchmark renders digits from.
set -euo pipefail
PACKAGES=(fonts-dejavu fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-cmu fonts-texgyre
  fonts-linuxlibertine fonts-noto-core fonts-dkg-handwriting fonts-bwht fonts-breip fonts-femkeklaver
  fonts-humor-sans fonts-kristi fonts-dancingscript fonts-rufscript fonts-sjfonts fonts-ecolier-court fonts-aenigma)
exec "$(dirname "$0")/apt_install.sh" "the benchmark (fonts)" "${PACKAGES[@]}"
