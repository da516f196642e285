#!/usr/bin/env bash
# Benchmark: the wall time of `airflow-ha status` (one SSH round trip per host, every host in
# parallel) on a bootstrapped lab, timed with hyperfine. The target: under 2 s for the 13 hosts of
# inventory/lab.yaml. Boots the lab and runs `bootstrap` first (SKIP_BOOTSTRAP=1 skips it when the
# lab already runs one); tears the lab down at the end unless KEEP_LAB=1 or it was already up.
# Usage: bash bench/status.sh [RUNS] [INVENTORY]   (default: 10 runs, the 13 hosts of inventory/lab.yaml
# with the test suite's Airflow stand-in, see bench/standin-lab.mjs)
# The node -e program below is JavaScript in single quotes on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
bash scripts/setup.sh
if [ -n "${2:-}" ]; then
  inv=$2
else
  # inventory/lab.yaml, installable on the lab: Airflow is the test suite's stand-in (not Airflow:
  # the lab has the Debian archive only), DAGs in mode sync. Kept in bench/out/lab between runs.
  inv=bench/out/lab/lab.yaml
  mkdir -p bench/out/lab
  python3 test/standin/build_wheel.py 2.9.0 "$PWD/bench/out/lab/wheelhouse" >/dev/null
  node bench/standin-lab.mjs "$PWD/bench/out/lab"
fi
command -v hyperfine >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }

# shellcheck source=bench/lab.sh
. bench/lab.sh
if [ "${SKIP_BOOTSTRAP:-0}" != 1 ]; then
  ./bin/airflow-ha bootstrap -i "$inv" --accept-new-host-keys >/dev/null
fi

out=bench/out
mkdir -p "$out"
# One run first: it records host keys if needed and shows what is measured.
./bin/airflow-ha status -i "$inv" --accept-new-host-keys || true
hosts=$(./bin/airflow-ha status -i "$inv" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).hosts.length))' || true)

# status exits 1 or 3 when the lab is degraded or down (e.g. Airflow roles not installed yet):
# the time is what is measured here, so non-zero exits are accepted (-i).
hyperfine -i --warmup 1 --runs "$runs" --export-json "$out/status-hyperfine.json" \
  -n status "./bin/airflow-ha status -i $inv --json"

node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results[0];
  const verdict = r.mean < 2 ? "under" : "OVER";
  console.log(`status of ${process.argv[2]} hosts: mean ${r.mean.toFixed(3)} s, max ${r.max.toFixed(3)} s (${verdict} the 2 s target)`);
' "$out/status-hyperfine.json" "$hosts"
