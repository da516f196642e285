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
# task: packages present tzdata chrony nftables sudo ca-certificates python3 policycoreutils-python-utils
( dnf install -y -q tzdata chrony nftables sudo ca-certificates python3 policycoreutils-python-utils )
# task: time zone Asia/Tehran
( test -e /usr/share/zoneinfo/Asia/Tehran && ln -sfn /usr/share/zoneinfo/Asia/Tehran /etc/localtime )
# task: service chronyd enabled, started
( systemctl enable chronyd )
( systemctl start chronyd )
# task: directory /etc/airflow-ha
( install -d -m 0755 -o root -g root /etc/airflow-ha )
# task: template /etc/airflow-ha/firewall.nft
# write /tmp/.airflow-ha-validate-c4664e7e3632321d (683 bytes, root:root 0600)
( ( nft -c -f /tmp/.airflow-ha-validate-c4664e7e3632321d ); rc=$?; rm -f /tmp/.airflow-ha-validate-c4664e7e3632321d; exit "$rc" )
# write /etc/airflow-ha/firewall.nft (683 bytes, root:root 0644)
# task: unit /etc/systemd/system/airflow-ha-firewall.service
# write /etc/systemd/system/airflow-ha-firewall.service (376 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-ha-firewall.service enabled, started
( systemctl enable airflow-ha-firewall.service )
( systemctl start airflow-ha-firewall.service )
# handler: restart airflow-ha-firewall.service
( systemctl restart airflow-ha-firewall.service )

# == step: airflow install
# task: packages present python3.11
( dnf install -y -q python3.11 )
# task: group airflow
( groupadd --system airflow )
# task: user airflow
( useradd --system --create-home --home-dir /opt/airflow --shell /sbin/nologin --gid airflow airflow )
# task: directory /opt/airflow
( install -d -m 0755 -o airflow -g airflow /opt/airflow )
# task: directory /opt/airflow/logs
( install -d -m 0755 -o airflow -g airflow /opt/airflow/logs )
# task: directory /opt/airflow/dags
( install -d -m 0755 -o airflow -g airflow /opt/airflow/dags )
# task: virtualenv /opt/airflow/venv
( python3.11 -m venv /opt/airflow/venv )
# task: apache-airflow 2.9.0 (pypi)
( /opt/airflow/venv/bin/pip install --disable-pip-version-check --no-input --constraint https://raw.githubusercontent.com/apache/airflow/constraints-2.9.0/constraints-3.11.txt 'apache-airflow[celery,postgres]==2.9.0' )

# == step: airflow config
# task: directory /etc/airflow-ha
( install -d -m 0755 -o root -g root /etc/airflow-ha )
# task: file /etc/airflow-ha/airflow.env
# write /etc/airflow-ha/airflow.env (159 bytes, root:root 0644)
# task: template /opt/airflow/airflow.cfg
# write /opt/airflow/airflow.cfg (2010 bytes, root:airflow 0640)
# handler: restart the running Airflow services
( if systemctl -q is-active airflow-worker.service; then systemctl restart airflow-worker.service; fi )

# == step: airflow services
# task: unit /etc/systemd/system/airflow-worker.service
# write /etc/systemd/system/airflow-worker.service (584 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-worker.service enabled, started
( systemctl enable airflow-worker.service )
( systemctl start airflow-worker.service )
# handler: restart airflow-worker.service
( systemctl restart airflow-worker.service )
