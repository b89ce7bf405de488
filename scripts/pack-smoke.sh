#!/usr/bin/env bash
# The packaging promise: `npm pack`, then `npm install -g <tarball>` into an empty prefix and
# `lapse demo` in an empty directory, with no dev dependencies and no build on the user's side.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" >/dev/null
tarball="$(ls "$work"/lapse-*.tgz)"
mkdir -p "$work/prefix" "$work/empty"
npm install -g --silent --no-audit --no-fund --prefix "$work/prefix" "$tarball" >/dev/null 2>&1
cd "$work/empty"
"$work/prefix/bin/lapse" demo > demo.log 2>&1 || { cat demo.log; echo "pack-smoke: lapse demo failed from the installed package" >&2; exit 1; }
grep -q 'audit chain: OK' demo.log || { cat demo.log; echo "pack-smoke: the demo did not verify its audit chain" >&2; exit 1; }
echo "pack-smoke: installed $(basename "$tarball") into an empty prefix; lapse demo ran and verified its audit chain"
