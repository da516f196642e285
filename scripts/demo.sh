#!/usr/bin/env bash
# The quick start: install, boot the 13-host lab of inventory/lab.yaml (the seed-003 topology on
# lab addresses), apply the demo playbook twice (the second run changes nothing), show the lab.
# `./bin/airflow-ha lab down -i inventory/lab.yaml` removes the lab again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./bin/airflow-ha validate -i inventory/lab.yaml
./bin/airflow-ha lab up -i inventory/lab.yaml
./bin/airflow-ha apply -i inventory/lab.yaml --playbook demo --accept-new-host-keys
./bin/airflow-ha apply -i inventory/lab.yaml --playbook demo
./bin/airflow-ha lab status -i inventory/lab.yaml
