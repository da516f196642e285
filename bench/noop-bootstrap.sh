#!/usr/bin/env bash
# Benchmark: the wall time of a no-op `airflow-ha bootstrap` (a re-run on a bootstrapped lab, nothing
# to change) timed with hyperfine. The target: at most 10 s for the 13 hosts of inventory/lab.yaml.
# Needs a lab that runs and is bootstrapped (this script boots and tears down nothing), e.g. the one
# `KEEP_LAB=1 bash bench/status.sh` or scripts/demo.sh leaves with inventory/lab.yaml. Checks that the
# measured run changes nothing, and prints the seconds of each of its steps (step_end events) and
# the machine's load average, which the figure depends on.
# Usage: bash bench/noop-bootstrap.sh INVENTORY [RUNS]   (default: 5 runs)
# The node -e programs below are JavaScript in single quotes on purpose.
# shellcheck disable=SC2016
set -euo pipefail
inv=$(realpath "${1:?usage: bash bench/noop-bootstrap.sh INVENTORY [RUNS]}")
runs=${2:-5}
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }

out=bench/out
mkdir -p "$out"
# One run first: it must change nothing (else this is not the no-op case); its steps are shown.
./bin/airflow-ha bootstrap -i "$inv" --json > "$out/noop-bootstrap.jsonl" || true
hosts=$(node -e '
  const ev = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const end = ev.find((e) => e.type === "run_end");
  if (!end || end.exitCode !== 0) { console.error(`bootstrap failed: ${end ? end.error : "no run_end event"}`); process.exit(1); }
  const changed = end.hosts.reduce((a, h) => a + h.changed, 0);
  if (changed > 0) { console.error(`not a no-op: ${changed} change(s); see ${process.argv[1]}`); process.exit(1); }
  for (const e of ev.filter((x) => x.type === "step_end")) {
    console.error(`${e.seconds.toFixed(2).padStart(7)} s  ${e.step}${e.gate ? ` (gate ${e.gate.seconds.toFixed(2)} s)` : ""}`);
  }
  console.error(`${end.seconds.toFixed(2).padStart(7)} s  the whole run`);
  console.log(end.hosts.length);
' "$out/noop-bootstrap.jsonl")

load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
hyperfine --warmup 1 --runs "$runs" --export-json "$out/noop-bootstrap-hyperfine.json" \
  -n 'no-op bootstrap' "./bin/airflow-ha bootstrap -i $(printf %q "$inv") --json"
load_after=$(cut -d ' ' -f 1-3 /proc/loadavg)

node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results[0];
  const verdict = r.max <= 10 ? "under" : "OVER";
  console.log(`no-op bootstrap of ${process.argv[2]} hosts: mean ${r.mean.toFixed(3)} s, max ${r.max.toFixed(3)} s (${verdict} the 10 s target)`);
' "$out/noop-bootstrap-hyperfine.json" "$hosts"
echo "load average (1, 5, 15 min) on $(nproc) CPUs: before $load_before, after $load_after"
