# shellcheck shell=bash
# shellcheck disable=SC2154 # $inv is set by the script that sources this file
# Sourced by the benchmarks: boot the lab of inventory $inv unless it already runs, and tear it
# down on exit unless it was up before or KEEP_LAB=1.
lab_was_up=0
if ./bin/airflow-ha lab status -i "$inv" >/dev/null 2>&1; then lab_was_up=1; fi
teardown() {
  # On a loaded machine a container with many processes can outlast lab down's wait; lab down is
  # idempotent, so it gets a second try.
  if [ "$lab_was_up" = 0 ] && [ "${KEEP_LAB:-0}" != 1 ]; then ./bin/airflow-ha lab down -i "$inv" || ./bin/airflow-ha lab down -i "$inv" || true; fi
}
trap teardown EXIT
./bin/airflow-ha lab up -i "$inv"
