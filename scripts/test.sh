#!/bin/sh
# Runs the whole test suite with node's runner. Node 20 neither finds .ts files with plain
# --test nor expands quoted globs, so the file list is built here.
set -eu
cd "$(dirname "$0")/.."
FAAS_WITH_TEST_PACKAGES=1 sh scripts/ensure-system-packages.sh
files=$(find packages -path '*/node_modules' -prune -o \( -name '*.test.ts' -print \) | sort)
if [ -z "$files" ]; then echo "no test files found" >&2; exit 1; fi
# Sandbox tests wait on processes more than on CPU: a few files at once use 2 cores well.
exec node --import tsx --test --test-concurrency="${FAAS_TEST_CONCURRENCY:-3}" --test-timeout=300000 "$@" $files
