#!/bin/sh
# One-time set-up of a fresh clone: system packages (as root), then the npm dependencies.
set -eu
cd "$(dirname "$0")/.."
FAAS_WITH_BUILD_TOOLS=1 sh scripts/ensure-system-packages.sh
npm ci
