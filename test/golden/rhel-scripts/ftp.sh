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
# write /tmp/.airflow-ha-validate-efc94a448611eb4c (1116 bytes, root:root 0600)
( ( nft -c -f /tmp/.airflow-ha-validate-efc94a448611eb4c ); rc=$?; rm -f /tmp/.airflow-ha-validate-efc94a448611eb4c; exit "$rc" )
# write /etc/airflow-ha/firewall.nft (1116 bytes, root:root 0644)
# task: unit /etc/systemd/system/airflow-ha-firewall.service
# write /etc/systemd/system/airflow-ha-firewall.service (376 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-ha-firewall.service enabled, started
( systemctl enable airflow-ha-firewall.service )
( systemctl start airflow-ha-firewall.service )
# handler: restart airflow-ha-firewall.service
( systemctl restart airflow-ha-firewall.service )
