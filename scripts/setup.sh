#!/usr/bin/env bash
# Installs what airflow-ha and its tests need on this machine (Debian 12, as root): the npm
# dependencies, the build, and the Debian tools the tests call (shellcheck; age and age-keygen for the
# age-encrypted secrets file; haproxy, keepalived, nft and xmllint for config checks; promtool and
# amtool, from Debian's prometheus and prometheus-alertmanager, check the monitoring configs).
# `airflow-ha lab up` installs the lab's own tools (debootstrap, systemd-container, apt-cacher-ng) itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "airflow-ha needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

missing=()
for tool in shellcheck:shellcheck age:age age-keygen:age haproxy:haproxy keepalived:keepalived nft:nftables xmllint:libxml2-utils ssh-keygen:openssh-client curl:curl promtool:prometheus amtool:prometheus-alertmanager; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
