#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: nfs2 (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (5 bytes, root:root 0644)
# task: hostname nfs2
( hostname nfs2 )
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
# write /tmp/.airflow-ha-validate-58d0a36e69c2c019 (778 bytes, root:root 0600)
( ( nft -c -f /tmp/.airflow-ha-validate-58d0a36e69c2c019 ); rc=$?; rm -f /tmp/.airflow-ha-validate-58d0a36e69c2c019; exit "$rc" )
# write /etc/airflow-ha/firewall.nft (778 bytes, root:root 0644)
# task: unit /etc/systemd/system/airflow-ha-firewall.service
# write /etc/systemd/system/airflow-ha-firewall.service (376 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-ha-firewall.service enabled, started
( systemctl enable airflow-ha-firewall.service )
( systemctl start airflow-ha-firewall.service )
# handler: restart airflow-ha-firewall.service
( systemctl restart airflow-ha-firewall.service )

# == step: airflow install
# task: packages present python3.11 etcd
( dnf install -y -q python3.11 etcd )
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
( if systemctl -q is-active airflow-dag-processor.service; then systemctl restart airflow-dag-processor.service; fi )

# == step: airflow services
# task: unit /etc/systemd/system/airflow-dag-processor.service
# write /etc/systemd/system/airflow-dag-processor.service (718 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-dag-processor.service enabled, started
( systemctl enable airflow-dag-processor.service )
( systemctl start airflow-dag-processor.service )
# handler: restart airflow-dag-processor.service
( systemctl restart airflow-dag-processor.service )
