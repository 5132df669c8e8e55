#!/bin/sh
# One-time set-up of a fresh clone: system packages (as root), then the npm dependencies.
set -eu
cd "$(dirname "$0")/.."
sh scripts/ensure-system-packages.sh
npm ci
