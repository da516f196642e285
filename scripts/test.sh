#!/usr/bin/env bash
# The whole test suite: unit tests (inventory rules, quoting, tasks, runner, templates, layering),
# transport tests against an in-process SSH server, then end-to-end tests of the real CLI against
# lab hosts (systemd containers this run boots on its own bridge and tears down).
# Set AIRFLOW_HA_SKIP_E2E=1 to run only the first two groups.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== shellcheck" >&2
shellcheck scripts/*.sh bench/*.sh .ci/run

echo "== unit and transport tests" >&2
node --test --test-reporter=spec dist/test/unit dist/test/ssh

if [ "${AIRFLOW_HA_SKIP_E2E:-0}" != 1 ]; then
  echo "== end-to-end tests on lab hosts" >&2
  node --test --test-reporter=spec --test-concurrency=1 dist/test/e2e
fi
