#!/usr/bin/env bash
# promtool (Debian's `prometheus` package) for the metrics lint test. The test runs this
# when no promtool is on PATH; it needs root and apt's package mirror.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool
