#!/usr/bin/env bash
# Benchmark: what `airflow-ha status` costs on a bootstrapped lab (one SSH round trip per host,
# every host in parallel), against its targets for the 13 hosts of inventory/lab.yaml:
#  - wall time, timed with hyperfine: mean under 2 s;
#  - CPU: CPU-seconds the lab spends per status run (every lab host is a container on this machine),
#    from each container's cgroup (bench/lab-cpu.mjs) around a series of runs, minus the idle rate
#    measured just before: at most 2 CPU-seconds; the cost per host is printed too. Without
#    per-container cgroups, /proc/stat of the whole machine minus the CLI's own CPU (bash's `time`);
#  - `status --watch 2` for 60 s: the lab's CPU use at most 25 points of the machine above idle (the
#    CLI's own CPU printed apart).
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

# CPU of the lab: each container's cgroup (bench/lab-cpu.mjs: the lab's hosts only, so neither the
# CLI nor other work on this machine counts). Where the containers have no cgroup of their own,
# the busy jiffies of the whole machine (proc(5) /proc/stat: user nice system irq softirq steal),
# minus the CLI's own CPU as bash's `time` reports it.
hz=$(getconf CLK_TCK)
if node bench/lab-cpu.mjs "$inv" >/dev/null 2>&1; then
  source_kind=cgroup
  sample() { node bench/lab-cpu.mjs "$inv" --by-unit; }
else
  source_kind=machine
  echo "bench/status.sh: $(node bench/lab-cpu.mjs "$inv" 2>&1 || true); measuring the whole machine instead" >&2
  sample() { awk -v hz="$hz" '/^cpu /{printf "{\"machine\":%d}\n", ($2+$3+$4+$7+$8+$9) * 1000000 / hz}' /proc/stat; }
fi
now() { date +%s.%N; }
idle_sec=20
i0=$(sample); ti0=$(now); sleep "$idle_sec"; ti1=$(now); i1=$(sample)
TIMEFORMAT='%U %S'
r0=$(sample); tr0=$(now)
cli=$( { time (for _ in $(seq "$runs"); do ./bin/airflow-ha status -i "$inv" --json >/dev/null 2>&1 || true; done) ; } 2>&1 | awk '{print $1 + $2}')
tr1=$(now); r1=$(sample)
watch_sec=60
w0=$(sample); tw0=$(now)
wcli=$( { time (timeout -s INT "$watch_sec" ./bin/airflow-ha status -i "$inv" --json --watch 2 >/dev/null 2>&1 || true) ; } 2>&1 | awk '{print $1 + $2}')
tw1=$(now); w1=$(sample)

node -e '
  const [file, hosts, kind, runs, cli, wcli, ...rest] = process.argv.slice(1);
  const [i0, ti0, ti1, i1, r0, tr0, tr1, r1, w0, tw0, tw1, w1] = rest;
  const r = JSON.parse(require("fs").readFileSync(file, "utf8")).results[0];
  const J = (s) => JSON.parse(s);
  // CPU-seconds per key between two samples (microseconds in the samples).
  const delta = (a, b) => Object.fromEntries(Object.keys(J(b)).map((k) => [k, ((J(b)[k] ?? 0) - (J(a)[k] ?? 0)) / 1e6]));
  const sum = (o) => Object.values(o).reduce((x, y) => x + y, 0);
  const idle = delta(i0, i1), series = delta(r0, r1), watch = delta(w0, w1);
  const idleSec = ti1 - ti0, seriesSec = tr1 - tr0, watchSec = tw1 - tw0;
  const idleRate = sum(idle) / idleSec;
  // In machine mode the CLI runs inside what is measured: its own CPU is subtracted.
  const own = kind === "machine" ? Number(cli) : 0;
  const wown = kind === "machine" ? Number(wcli) : 0;
  const perRun = (sum(series) - idleRate * seriesSec - own) / runs;
  const watchRate = (sum(watch) - wown) / watchSec;
  const raise = (100 * (watchRate - idleRate)) / idleRate;
  // Points of the capacity of the machine (what the %CPU of top adds up to): the lab use rises
  // from idle% to watch% of all CPUs.
  const cpus = require("os").cpus().length;
  const points = (100 * (watchRate - idleRate)) / cpus;
  const v = (ok) => (ok ? "under" : "OVER");
  const what = kind === "cgroup" ? "across the lab containers (their cgroups)" : "across the machine (the CLI own CPU subtracted)";
  console.log(`status of ${hosts} hosts: mean ${r.mean.toFixed(3)} s, max ${r.max.toFixed(3)} s (${v(r.mean < 2)} the 2 s target)`);
  console.log(`status of ${hosts} hosts: ${perRun.toFixed(2)} CPU-seconds per run ${what}, idle rate ${idleRate.toFixed(2)} CPU-s/s subtracted (${v(perRun <= 2)} the 2 CPU-s target); the CLI itself ${(Number(cli) / runs).toFixed(2)} CPU-s per run`);
  if (kind === "cgroup") {
    // Keys are "<host> <unit>" (bench/lab-cpu.mjs --by-unit): the cost per run of each, idle subtracted.
    const cost = Object.keys(series).map((k) => [k, (series[k] - ((idle[k] ?? 0) / idleSec) * seriesSec) / runs]);
    const hostsCost = {};
    for (const [k, c] of cost) hostsCost[k.split(" ")[0]] = (hostsCost[k.split(" ")[0]] ?? 0) + c;
    const per = Object.entries(hostsCost).sort((a, b) => b[1] - a[1]);
    console.log(`  per host and run (CPU-s): ${per.map(([h, c]) => `${h} ${c.toFixed(3)}`).join(", ")}`);
    const top = cost.sort((a, b) => b[1] - a[1]).slice(0, 10);
    console.log(`  the 10 largest units per run (CPU-s; "ssh" holds what the SSH sessions run): ${top.map(([k, c]) => `${k} ${c.toFixed(3)}`).join(", ")}`);
  }
  console.log(`status --watch 2 for ${watchSec.toFixed(0)} s: the lab at ${watchRate.toFixed(2)} CPU-s/s against ${idleRate.toFixed(2)} idle: its share of the ${cpus} CPUs from ${((100 * idleRate) / cpus).toFixed(1)} % to ${((100 * watchRate) / cpus).toFixed(1)} %, +${points.toFixed(1)} points (${v(points <= 25)} the 25 % target, read as points of the machine), ${raise.toFixed(0)} % relative to the lab idle (shown only: an idle lab of 13 hosts uses so little that any SSH round trip per tick multiplies it); the CLI ${(Number(wcli) / watchSec).toFixed(2)} CPU-s/s`);
' "$out/status-hyperfine.json" "$hosts" "$source_kind" "$runs" "$cli" "$wcli" "$i0" "$ti0" "$ti1" "$i1" "$r0" "$tr0" "$tr1" "$r1" "$w0" "$tw0" "$tw1" "$w1"
