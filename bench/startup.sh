#!/usr/bin/env bash
# Benchmark: how fast the CLI starts, timed with hyperfine. Two commands that connect to nothing:
# `airflow-ha --help` and `airflow-ha validate -i inventory/lab.yaml` (load, check and report an
# inventory offline). The target: under 0.15 s each (mean and max).
# Usage: bash bench/startup.sh [RUNS]   (default: 30 runs each)
# The node -e program below is JavaScript in single quotes on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
bash scripts/setup.sh
command -v hyperfine >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }

out=bench/out
mkdir -p "$out"
hyperfine -N --warmup 3 --runs "$runs" --export-json "$out/startup-hyperfine.json" \
  -n help './bin/airflow-ha --help' \
  -n validate './bin/airflow-ha validate -i inventory/lab.yaml'

node -e '
  const target = 0.15;
  for (const r of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results) {
    const verdict = r.mean <= target && r.max <= target ? "under" : "OVER";
    // CPU time (user + system) says what the wall time says on an idle machine, and less on a busy one.
    console.log(`${r.command}: mean ${r.mean.toFixed(3)} s, max ${r.max.toFixed(3)} s (${verdict} the ${target} s target); CPU user+sys mean ${(r.user + r.system).toFixed(3)} s`);
  }
' "$out/startup-hyperfine.json"
