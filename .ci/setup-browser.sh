#!/bin/sh
# Installs what the browser tests of bprof flamegraph need: Chromium from
# Debian and the pinned node packages of tests/browser. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y --no-install-recommends chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt-get install -y --no-install-recommends nodejs npm
fi
cd tests/browser
npm ci --no-audit --no-fund
