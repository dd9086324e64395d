#!/usr/bin/env bash
# Installs what `npm test`, `npm run demo` and `npm run bench` need when it is missing:
# npm dependencies, and from Debian's packages nats-server and etcd, Chromium (browser tests,
# mermaid-cli), PlantUML and Graphviz (the diagram render test), promtool (in Debian's
# `prometheus`: the alert-rules test) and libfaketime (Debian's `faketime`: the wall-clock jump
# test). Idempotent and quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# mermaid-cli's puppeteer would download a browser of its own, which fails here: we use Debian's.
export PUPPETEER_SKIP_DOWNLOAD=1

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
# Without these the browser, diagram render, alert-rules and wall-clock jump tests skip, saying
# so: wanted, not required.
wanted=()
command -v chromium >/dev/null 2>&1 || wanted+=(chromium)
command -v plantuml >/dev/null 2>&1 || wanted+=(plantuml)
command -v dot >/dev/null 2>&1 || wanted+=(graphviz)
command -v promtool >/dev/null 2>&1 || wanted+=(prometheus)
command -v faketime >/dev/null 2>&1 || wanted+=(faketime)

if [ $((${#missing[@]} + ${#wanted[@]})) -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing+=("${wanted[@]}")
    echo "ensure-deps: installing ${missing[*]} from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # Debian enables services on the default ports; we never use them (every test and the
    # demo start their own servers on free ports), and policy-rc.d keeps them from starting.
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      own_policy=1
    fi
    status=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || status=$?
    [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
    [ "$status" = 0 ] || exit "$status"
  elif [ ${#missing[@]} -gt 0 ]; then
    echo "ensure-deps: missing ${missing[*]}." >&2
    echo "  Install them as root: apt-get install ${missing[*]} ${wanted[*]}" >&2
    echo "  (or put nats-server >= 2.9 and etcd >= 3.4 on PATH)." >&2
    exit 1
  else
    echo "ensure-deps: no ${wanted[*]}: the browser, diagram render, alert-rules or wall-clock jump tests will skip." >&2
    echo "  Install them as root: apt-get install ${wanted[*]}" >&2
  fi
fi
