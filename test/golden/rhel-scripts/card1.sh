#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: card1 (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (6 bytes, root:root 0644)
# task: hostname card1
( hostname card1 )
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
# write /var/lib/airflow-ha/tmp/validate-1304a7f8069c1d79 (885 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /var/lib/airflow-ha/tmp/validate-1304a7f8069c1d79 "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-1304a7f8069c1d79; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (885 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )

# == step: ssh target
# task: user airflow_svc
( useradd --create-home --home-dir /home/airflow_svc --shell /bin/bash airflow_svc )
# task: directory /home/airflow_svc/.ssh
( install -d -m 0700 -o airflow_svc -g airflow_svc /home/airflow_svc/.ssh )
# task: file /home/airflow_svc/.ssh/authorized_keys
# write /home/airflow_svc/.ssh/authorized_keys (136 bytes, airflow_svc:airflow_svc 0600)
