#!/usr/bin/env bash
# Install the Debian packages the language track reads its text from: the KJV and WEB Bibles (SWORD modules,
# exported with diatheke), WordNet 3.0, and apertium's English-Spanish pair (rule-based back-translation).
set -euo pipefail
exec "$(dirname "$0")/apt_install.sh" "the language track" \
  sword-text-kjv sword-text-web diatheke wordnet-base wordnet-sense-index apertium apertium-eng-spa
