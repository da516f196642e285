#!/usr/bin/env bash
# The quick start, end to end: the main job on a lab of real hosts on this machine.
#  1. installs airflow-ha (scripts/setup.sh) and fills the lab's Airflow wheelhouse
#     (scripts/lab-wheelhouse.sh: Apache Airflow when a Python package index is reachable, else the
#     test suite's Airflow stand-in, which is NOT Apache Airflow);
#  2. boots the 13 hosts of inventory/lab.yaml (the seed-003 topology; one systemd container each);
#  3. runs `airflow-ha bootstrap` on them, then again: the second run must change nothing;
#  4. runs `airflow-ha status`, checks the UI's /health through the VIP from this machine, and prints
#     where the UI, Flower and HAProxy's stats answer, and where their logins are kept.
# Ends with the wall time. `./bin/airflow-ha lab down -i inventory/lab.yaml` removes the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
inv=inventory/lab.yaml
ah=./bin/airflow-ha

bash scripts/setup.sh
"$ah" validate -i "$inv"
bash scripts/lab-wheelhouse.sh "$inv"

"$ah" lab up -i "$inv"
echo "== bootstrap (first run)"
"$ah" bootstrap -i "$inv" --accept-new-host-keys

echo "== bootstrap again: nothing may change"
"$ah" bootstrap -i "$inv" --json >inventory/lab.state/second-run.jsonl
changed=$(node -e '
  const end = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse).find((e) => e.type === "run_end");
  console.log(end.hosts.reduce((n, h) => n + h.changed, 0) + " " + end.seconds);
' inventory/lab.state/second-run.jsonl)
echo "second run (a no-op bootstrap): ${changed% *} change(s) in ${changed#* } s (target: at most 10 s; bench/noop-bootstrap.sh times it)"
if [ "${changed% *}" != 0 ]; then
  echo "a second bootstrap changed something: see inventory/lab.state/second-run.jsonl" >&2
  exit 1
fi

echo "== status"
rc=0
"$ah" status -i "$inv" || rc=$?

vip=$("$ah" endpoints -i "$inv" 2>/dev/null | sed -n 's|^Airflow UI *\(http://[^ ]*\)/.*|\1|p')
# The health path of the inventory's Airflow major (/health on 2.x, /api/v2/monitor/health on 3.x).
health=$(node --input-type=module -e '
  const { loadInventory } = await import("./dist/src/inventory/load.js");
  const { airflowLayout } = await import("./dist/src/components/airflow-layout.js");
  console.log(airflowLayout((await loadInventory(process.argv[1])).inventory.cluster.versions.airflow).healthPath);
' "$inv")
echo "== the Airflow UI through the VIP from this machine: GET ${vip}${health}"
curl -fsS --max-time 10 "${vip}${health}"
echo
echo "== where the cluster answers"
"$ah" endpoints -i "$inv" 2>/dev/null
echo "demo: done in $(($(date +%s) - started)) s (status exit $rc); remove the lab with: $ah lab down -i $inv"
exit "$rc"
