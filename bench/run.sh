#!/usr/bin/env bash
# Benchmark: a no-op re-run of the same workload (playbooks/demo.ts vs bench/demo.yml) on the 13
# lab hosts of inventory/lab.yaml, by airflow-ha and by Ansible (Debian's ansible-core, forks=13,
# pipelining on), timed with hyperfine. Prints both means and the ratio.
# Boots the lab if needed and tears it down at the end unless KEEP_LAB=1.
# Usage: bash bench/run.sh [RUNS]
# The node -e programs below are JavaScript in single quotes on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
inv=inventory/lab.yaml
bash scripts/setup.sh
for tool in hyperfine:hyperfine ansible-playbook:ansible-core; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null; }
done

# shellcheck source=bench/lab.sh
. bench/lab.sh

out=bench/out
rm -rf "$out"
mkdir -p "$out"
./bin/airflow-ha render -i "$inv" --playbook demo --out "$out/rendered" >/dev/null
node dist/bench/ansible-inventory.js "$inv" > "$out/hosts.ini"

# Converge with both tools first: the measured runs must be no-ops for both.
./bin/airflow-ha apply -i "$inv" --playbook demo --accept-new-host-keys >/dev/null
export ANSIBLE_CONFIG="$PWD/bench/ansible.cfg"
ansible-playbook -i "$out/hosts.ini" bench/demo.yml > "$out/ansible-converge.log"
ansible-playbook -i "$out/hosts.ini" bench/demo.yml > "$out/ansible-noop.log"
if ! grep -Eq 'changed=0 ' "$out/ansible-noop.log" || grep -Eq 'changed=[1-9]' "$out/ansible-noop.log"; then
  echo "Ansible's re-run is not a no-op; see $out/ansible-noop.log" >&2
  exit 1
fi
./bin/airflow-ha apply -i "$inv" --playbook demo --json > "$out/airflow-ha-noop.jsonl"
node -e '
  const ev = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const end = ev.find((e) => e.type === "run_end");
  const changed = end.hosts.reduce((a, h) => a + h.changed, 0);
  if (!end.ok || changed !== 0) { console.error("airflow-ha re-run is not a no-op"); process.exit(1); }
' "$out/airflow-ha-noop.jsonl"

hyperfine --warmup 1 --runs "$runs" --export-json "$out/hyperfine.json" \
  -n airflow-ha "./bin/airflow-ha apply -i $inv --playbook demo" \
  -n ansible "ansible-playbook -i $out/hosts.ini bench/demo.yml"

node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
  const a = r.find((x) => x.command === "airflow-ha"), b = r.find((x) => x.command === "ansible");
  console.log(`no-op re-run on 13 hosts: airflow-ha ${a.mean.toFixed(3)} s, Ansible ${b.mean.toFixed(3)} s: airflow-ha is ${(b.mean / a.mean).toFixed(1)}x faster`);
' "$out/hyperfine.json"
