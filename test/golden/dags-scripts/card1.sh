#!/bin/sh
# airflow-ha apply --playbook dags on a fresh Rocky/RHEL 9 host: card1 (fixed test secrets)
set -e

# == step: host identity
# task: file /etc/hostname
# write /etc/hostname (6 bytes, root:root 0644)
# task: hostname card1
( hostname card1 )
# task: block "cluster airflow-seed" in /etc/hosts
# write /etc/hosts (401 bytes, root:root 0644)

# == step: ssh target
# task: user airflow_svc
( useradd --create-home --home-dir /home/airflow_svc --shell /bin/bash airflow_svc )
# task: directory /home/airflow_svc/.ssh
( install -d -m 0700 -o airflow_svc -g airflow_svc /home/airflow_svc/.ssh )
# task: file /home/airflow_svc/.ssh/authorized_keys
# write /home/airflow_svc/.ssh/authorized_keys (136 bytes, airflow_svc:airflow_svc 0600)
