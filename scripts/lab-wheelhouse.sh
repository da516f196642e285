#!/usr/bin/env bash
# Fills the lab's Airflow wheelhouse (cluster.airflow.install.wheelhouse of inventory/lab.yaml):
# - Apache Airflow VERSION with the celery and postgres extras and every dependency, for the lab
#   hosts' Python (Debian 12: CPython 3.11, this machine's architecture), pinned by Airflow's own
#   constraints file, when this machine's pip reaches a Python package index;
# - otherwise the test suite's Airflow stand-in (test/standin/: NOT Apache Airflow; `status` names
#   it "Airflow stand-in, not Apache Airflow").
# A wheelhouse already filled for VERSION is kept. Prints one line saying which one the lab gets.
# The folder and the version are the inventory's (cluster.airflow.install.wheelhouse,
# cluster.versions.airflow), read with airflow-ha's own loader (run `npm run build` first).
# Usage: bash scripts/lab-wheelhouse.sh INVENTORY
# AIRFLOW_CONSTRAINTS_URL overrides the constraints file (Airflow docs, "Installation from PyPI").
# The node program below is JavaScript in single quotes on purpose.
# shellcheck disable=SC2016
set -euo pipefail
inv=$(realpath "${1:?usage: lab-wheelhouse.sh INVENTORY}")
cd "$(dirname "$0")/.."
read -r dir version < <(node --input-type=module -e '
  const { loadInventory } = await import("./dist/src/inventory/load.js");
  const c = (await loadInventory(process.argv[1])).inventory.cluster;
  if (!c.airflow.install.wheelhouse) throw new Error(`${process.argv[1]}: cluster.airflow.install has no wheelhouse`);
  console.log(c.airflow.install.wheelhouse, c.versions.airflow);
' "$inv")
python=3.11
mkdir -p "$dir"

kind_of() {
  # The wheel's own metadata says what it is (test/standin/build_wheel.py writes "stand-in").
  python3 - "$1" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    print("stand-in" if "stand-in" in z.read(meta).decode() else "airflow")
PY
}

wheel=$(find "$dir" -maxdepth 1 -name "apache_airflow-${version}-*.whl" -print -quit)
if [ -n "$wheel" ] && [ -f "$dir/constraints.txt" ]; then
  if [ "$(kind_of "$wheel")" = airflow ]; then
    echo "wheelhouse $dir: Apache Airflow $version (kept)"
  else
    echo "wheelhouse $dir: the Airflow stand-in, NOT Apache Airflow (kept; remove the folder to try a package index again)"
  fi
  exit 0
fi

# Does pip reach an index? One quick look, without retries (a machine without one answers at once).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
if python3 -m pip --version >/dev/null 2>&1 &&
  python3 -m pip download --quiet --retries 0 --timeout 10 --no-deps --dest "$probe" "apache-airflow==$version" >/dev/null 2>&1; then
  url=${AIRFLOW_CONSTRAINTS_URL:-https://raw.githubusercontent.com/apache/airflow/constraints-${version}/constraints-${python}.txt}
  echo "wheelhouse $dir: downloading Apache Airflow $version and its dependencies for Python $python" >&2
  python3 - "$url" "$dir/constraints.txt" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY
  python3 -m pip download --quiet --dest "$dir" --only-binary=:all: --python-version "$python" \
    --implementation cp --platform "manylinux2014_$(uname -m)" --platform "manylinux_2_28_$(uname -m)" \
    --constraint "$dir/constraints.txt" "apache-airflow[celery,postgres]==$version"
  echo "wheelhouse $dir: Apache Airflow $version"
else
  python3 test/standin/build_wheel.py "$version" "$dir" >/dev/null
  echo "wheelhouse $dir: no Python package index reachable from this machine, so the lab gets the Airflow stand-in (test/standin/), NOT Apache Airflow"
fi
