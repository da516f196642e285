#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: worker1 (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (8 bytes, root:root 0644)
# task: hostname worker1
( hostname worker1 )
# task: block "cluster airflow-seed" in /etc/hosts
# write /etc/hosts (401 bytes, root:root 0644)
# task: packages present tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock
( dnf install -y -q tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock )
# task: time zone Asia/Tehran
( test -e /usr/share/zoneinfo/Asia/Tehran && ln -sfn /usr/share/zoneinfo/Asia/Tehran /etc/localtime )
# task: service chronyd enabled, started
( systemctl enable chronyd )
( systemctl start chronyd )
# task: template /etc/firewalld/zones/airflow-ha.xml
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-342231a03c63cece (1200 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /var/lib/airflow-ha/tmp/validate-342231a03c63cece "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-342231a03c63cece; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (1200 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )

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

# == step: airflow install
# task: packages present python3.11
( dnf install -y -q python3.11 )
# task: group airflow
( groupadd --system airflow )
# task: user airflow
( useradd --system --create-home --home-dir /opt/airflow --shell /sbin/nologin --gid airflow airflow )
# task: directory /opt/airflow
( install -d -m 0755 -o root -g root /opt/airflow )
# task: directory /opt/airflow/logs
( install -d -m 0755 -o airflow -g airflow /opt/airflow/logs )
# task: directory /opt/airflow/state
( install -d -m 0750 -o airflow -g airflow /opt/airflow/state )
# task: virtualenv /opt/airflow/venv-2.9.0 is root's alone (else rebuilt)
( rm -rf -- /opt/airflow/venv-2.9.0 )
# task: virtualenv /opt/airflow/venv-2.9.0
( python3.11 -m venv /opt/airflow/venv-2.9.0 )
# task: apache-airflow 2.9.0 (pypi)
( /opt/airflow/venv-2.9.0/bin/pip install --disable-pip-version-check --no-input --constraint https://raw.githubusercontent.com/apache/airflow/constraints-2.9.0/constraints-3.11.txt 'apache-airflow[celery,postgres]==2.9.0' )
# task: /opt/airflow/venv -> venv-2.9.0
( rm -rf -- /opt/airflow/venv.new && ln -s venv-2.9.0 /opt/airflow/venv.new && if [ -d /opt/airflow/venv ] && [ ! -L /opt/airflow/venv ]; then rm -rf -- /opt/airflow/venv.pre-versioned && mv -T /opt/airflow/venv /opt/airflow/venv.pre-versioned; fi && mv -T /opt/airflow/venv.new /opt/airflow/venv && rm -rf -- /opt/airflow/venv.pre-versioned )
# handler: restart the running Airflow services
( if systemctl -q is-active airflow-worker.service; then systemctl restart airflow-worker.service; fi )

# == step: airflow config
# task: directory /etc/airflow-ha
( install -d -m 0755 -o root -g root /etc/airflow-ha )
# task: file /etc/airflow-ha/airflow.env
# write /etc/airflow-ha/airflow.env (159 bytes, root:root 0644)
# task: template /opt/airflow/airflow.cfg
# write /opt/airflow/airflow.cfg (2210 bytes, root:airflow 0640)
# handler: restart the running Airflow services
( if systemctl -q is-active airflow-worker.service; then systemctl restart airflow-worker.service; fi )

# == step: airflow services
# task: unit /etc/systemd/system/airflow-worker.service
# write /etc/systemd/system/airflow-worker.service (975 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-worker.service enabled, started
( systemctl enable airflow-worker.service )
( systemctl start airflow-worker.service )
# handler: restart airflow-worker.service
( systemctl reset-failed airflow-worker.service 2>/dev/null; systemctl restart airflow-worker.service )

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
