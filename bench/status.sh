#!/usr/bin/env bash
# Benchmark: what `airflow-ha status` costs on a bootstrapped lab (one SSH round trip per host,
# every host in parallel), against its targets for the 13 hosts of inventory/lab.yaml:
#  - wall time, timed with hyperfine: mean under 2 s;
#  - CPU: CPU-seconds the lab spends per status run (every lab host is a container on this machine),
#    from /proc/stat around a series of runs, minus the idle rate measured just before and minus the
#    CLI's own CPU time (bash's `time`): at most 2 CPU-seconds;
#  - `status --watch 2` for 60 s: the lab's CPU use at most 25 % above idle (the CLI's own CPU
#    time printed apart).
# Boots the lab and runs `bootstrap` first unless the lab already runs (SKIP_BOOTSTRAP=1 skips the
# bootstrap); tears the lab down at the end unless KEEP_LAB=1 or it was already up.
# Usage: bash bench/status.sh [RUNS] [INVENTORY]   (default: 10 runs, inventory/lab.yaml)
# The node -e program below is JavaScript in single quotes on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
inv=${2:-inventory/lab.yaml}
bash scripts/setup.sh
command -v hyperfine >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }
if [ "$inv" = inventory/lab.yaml ]; then
  bash scripts/lab-wheelhouse.sh "$inv"
fi

# shellcheck source=bench/lab.sh
. bench/lab.sh
if [ "${SKIP_BOOTSTRAP:-0}" != 1 ] && [ "$lab_was_up" = 0 ]; then
  ./bin/airflow-ha bootstrap -i "$inv" --accept-new-host-keys >/dev/null
fi

out=bench/out
mkdir -p "$out"
# One run first: it records host keys if needed and shows what is measured.
./bin/airflow-ha status -i "$inv" --accept-new-host-keys || true
hosts=$(./bin/airflow-ha status -i "$inv" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).hosts.length))' || true)

# status exits 1 or 3 when the lab is degraded or down: the cost is what is measured here, so
# non-zero exits are accepted (-i).
hyperfine -i --warmup 1 --runs "$runs" --export-json "$out/status-hyperfine.json" \
  -n status "./bin/airflow-ha status -i $inv --json"

# Busy jiffies of the whole machine (proc(5): user nice system idle iowait irq softirq steal).
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
hz=$(getconf CLK_TCK)
idle_sec=20
b0=$(busy); sleep "$idle_sec"; b1=$(busy)
# The CLI's own CPU (user + system of the series, children included) as bash's `time` reports it.
TIMEFORMAT='%U %S'
t0=$(date +%s.%N); c0=$(busy)
cli=$( { time (for _ in $(seq "$runs"); do ./bin/airflow-ha status -i "$inv" --json >/dev/null 2>&1 || true; done) ; } 2>&1 | awk '{print $1 + $2}')
c1=$(busy); t1=$(date +%s.%N)
watch_sec=60
w0=$(busy)
wcli=$( { time (timeout -s INT "$watch_sec" ./bin/airflow-ha status -i "$inv" --json --watch 2 >/dev/null 2>&1 || true) ; } 2>&1 | awk '{print $1 + $2}')
w1=$(busy)

node -e '
  const [file, hosts, hz, idleSec, b0, b1, t0, t1, c0, c1, runs, watchSec, w0, w1, cli, wcli] = process.argv.slice(1);
  const r = JSON.parse(require("fs").readFileSync(file, "utf8")).results[0];
  const idleRate = (b1 - b0) / hz / idleSec;
  const perRun = ((c1 - c0) / hz - idleRate * (t1 - t0) - cli) / runs;
  const watchRate = ((w1 - w0) / hz - wcli) / watchSec;
  const raise = (100 * (watchRate - idleRate)) / idleRate;
  // Also in points of the capacity of the machine (what the %CPU of top adds up to): the lab use rises
  // from idle% to watch% of all CPUs.
  const cpus = require("os").cpus().length;
  const points = (100 * (watchRate - idleRate)) / cpus;
  const v = (ok) => (ok ? "under" : "OVER");
  console.log(`status of ${hosts} hosts: mean ${r.mean.toFixed(3)} s, max ${r.max.toFixed(3)} s (${v(r.mean < 2)} the 2 s target)`);
  console.log(`status of ${hosts} hosts: ${perRun.toFixed(2)} CPU-seconds per run across the lab (idle rate ${idleRate.toFixed(2)} CPU-s/s and the CLI own ${(cli / runs).toFixed(2)} CPU-s per run subtracted) (${v(perRun <= 2)} the 2 CPU-s target)`);
  console.log(`status --watch 2 for ${watchSec} s: the lab at ${watchRate.toFixed(2)} CPU-s/s against ${idleRate.toFixed(2)} idle: its share of the ${cpus} CPUs from ${((100 * idleRate) / cpus).toFixed(1)} % to ${((100 * watchRate) / cpus).toFixed(1)} %, +${points.toFixed(1)} points (${v(points <= 25)} the 25 % target read as points of the machine), ${raise.toFixed(0)} % relative to idle (${v(raise <= 25)} it read as relative); the CLI ${(wcli / watchSec).toFixed(2)} CPU-s/s`);
' "$out/status-hyperfine.json" "$hosts" "$hz" "$idle_sec" "$b0" "$b1" "$t0" "$t1" "$c0" "$c1" "$runs" "$watch_sec" "$w0" "$w1" "$cli" "$wcli"
