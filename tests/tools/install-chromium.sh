#!/usr/bin/env bash
# Headless Chromium for the status page's browser test (Debian's `chromium` package).
# The test runs this when no chromium is on PATH; it needs root and apt's package mirror.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium
