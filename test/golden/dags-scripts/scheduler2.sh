#!/bin/sh
# airflow-ha apply --playbook dags on a fresh Rocky/RHEL 9 host: scheduler2 (fixed test secrets)
set -e

# == step: host identity
# task: file /etc/hostname
# write /etc/hostname (11 bytes, root:root 0644)
# task: hostname scheduler2
( hostname scheduler2 )
# task: block "cluster airflow-seed" in /etc/hosts
# write /etc/hosts (401 bytes, root:root 0644)

# == step: dags: nfs clients
# task: packages present nfs-utils
( dnf install -y -q nfs-utils )
# task: unit /etc/systemd/system/opt-airflow-dags.mount
# write /etc/systemd/system/opt-airflow-dags.mount (759 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service opt-airflow-dags.mount enabled, started
( systemctl enable opt-airflow-dags.mount )
( systemctl start opt-airflow-dags.mount )
# handler: restart opt-airflow-dags.mount
( systemctl reset-failed opt-airflow-dags.mount 2>/dev/null; systemctl restart opt-airflow-dags.mount )
