#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: ftp (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (4 bytes, root:root 0644)
# task: hostname ftp
( hostname ftp )
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
# write /tmp/.airflow-ha-validate-ba7611d27c50ee19 (1163 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /tmp/.airflow-ha-validate-ba7611d27c50ee19 "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /tmp/.airflow-ha-validate-ba7611d27c50ee19; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (1163 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )
