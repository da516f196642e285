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
# task: packages present tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock
( dnf install -y -q tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock )
# task: time zone Asia/Tehran
( test -e /usr/share/zoneinfo/Asia/Tehran && ln -sfn /usr/share/zoneinfo/Asia/Tehran /etc/localtime )
# task: service chronyd enabled, started
( systemctl enable chronyd )
( systemctl start chronyd )
# task: template /etc/firewalld/zones/airflow-ha.xml
# write /tmp/.airflow-ha-validate-db22c725f8647d20 (1022 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /tmp/.airflow-ha-validate-db22c725f8647d20 "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /tmp/.airflow-ha-validate-db22c725f8647d20; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (1022 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )
