#!/bin/sh
# airflow-ha apply --playbook dags on a fresh Rocky/RHEL 9 host: worker1 (fixed test secrets)
set -e

# == step: host identity
# task: file /etc/hostname
# write /etc/hostname (8 bytes, root:root 0644)
# task: hostname worker1
( hostname worker1 )
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

# == step: ssh target: workers
# task: group airflow
( groupadd --system airflow )
# task: user airflow
( useradd --system --create-home --home-dir /opt/airflow --shell /sbin/nologin --gid airflow airflow )
# task: directory /opt/airflow
( install -d -m 0755 -o root -g root /opt/airflow )
# task: directory /opt/airflow/.ssh
( install -d -m 0700 -o airflow -g airflow /opt/airflow/.ssh )
# task: secret file /opt/airflow/.ssh/target_ed25519
# write /opt/airflow/.ssh/target_ed25519 (93 bytes, airflow:airflow 0600)
# task: file /opt/airflow/.ssh/known_hosts
# write /opt/airflow/.ssh/known_hosts (102 bytes, airflow:airflow 0644)
# task: file /opt/airflow/.ssh/config
# write /opt/airflow/.ssh/config (359 bytes, airflow:airflow 0600)
# task: directory /etc/airflow-ha
( install -d -m 0755 -o root -g root /etc/airflow-ha )
# task: file /etc/airflow-ha/airflow-connections.json
# write /etc/airflow-ha/airflow-connections.json (411 bytes, root:airflow 0640)
# task: airflow connections import (SSH targets)
( cd /opt/airflow && runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow /opt/airflow/venv/bin/airflow connections import --overwrite /etc/airflow-ha/airflow-connections.json && install -D -m 0600 /etc/airflow-ha/airflow-connections.json /var/lib/airflow-ha/airflow-connections.imported.json )
