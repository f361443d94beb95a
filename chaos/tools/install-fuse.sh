#!/usr/bin/env bash
# libfuse 2 for the stalled-disk scenario's filesystem (chaos/stalling_fs.py, on fusepy).
# The scenario runs this when the library is missing; it needs root and apt's mirror.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libfuse2 >/dev/null || apt-get install -y -qq --no-install-recommends libfuse2t64 >/dev/null
