#!/usr/bin/env bash
# Installs what `npm test`, `npm run demo` and `npm run bench` need when it is missing:
# npm dependencies, nats-server and etcd from Debian's packages, and promtool (Debian's
# `prometheus`, for the alert-rules test). Idempotent and quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
# promtool checks the alert rules under deploy/prometheus; Debian ships it in `prometheus`.
# Optional: without it that test says it skipped and why.
optional=()
command -v promtool >/dev/null 2>&1 || optional+=(prometheus)

install_packages() {
  echo "ensure-deps: installing $* from Debian's packages" >&2
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
  apt-get install -y -qq --no-install-recommends "$@" >&2 || status=$?
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  return "$status"
}

can_install=
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then can_install=1; fi

if [ ${#missing[@]} -gt 0 ] || [ ${#optional[@]} -gt 0 ]; then
  if [ -n "$can_install" ]; then
    install_packages "${missing[@]}" "${optional[@]}"
  elif [ ${#missing[@]} -gt 0 ]; then
    echo "ensure-deps: missing ${missing[*]}." >&2
    echo "  Install them as root: apt-get install ${missing[*]} ${optional[*]}" >&2
    echo "  (or put nats-server >= 2.9 and etcd >= 3.4 on PATH)." >&2
    exit 1
  else
    echo "ensure-deps: promtool is missing (apt-get install prometheus, as root): the alert" >&2
    echo "  rules test will skip." >&2
  fi
fi
