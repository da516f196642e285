#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: airflow (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (8 bytes, root:root 0644)
# task: hostname airflow
( hostname airflow )
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
# write /tmp/.airflow-ha-validate-11ef0d0cb2f457ea (1257 bytes, root:root 0600)
( ( nft -c -f /tmp/.airflow-ha-validate-11ef0d0cb2f457ea ); rc=$?; rm -f /tmp/.airflow-ha-validate-11ef0d0cb2f457ea; exit "$rc" )
# write /etc/airflow-ha/firewall.nft (1257 bytes, root:root 0644)
# task: unit /etc/systemd/system/airflow-ha-firewall.service
# write /etc/systemd/system/airflow-ha-firewall.service (376 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-ha-firewall.service enabled, started
( systemctl enable airflow-ha-firewall.service )
( systemctl start airflow-ha-firewall.service )
# handler: restart airflow-ha-firewall.service
( systemctl restart airflow-ha-firewall.service )

# == step: haproxy
# task: sysctl net.ipv4.ip_nonlocal_bind
# write /etc/sysctl.d/60-airflow-ha-haproxy.conf (54 bytes, root:root 0644)
( sysctl -q -w net.ipv4.ip_nonlocal_bind=1 )
# task: packages present haproxy
( dnf install -y -q haproxy )
# task: template /etc/haproxy/haproxy.cfg
# write /tmp/.airflow-ha-validate-7b2ed1941c638078 (1865 bytes, root:root 0600)
( ( haproxy -c -q -f /tmp/.airflow-ha-validate-7b2ed1941c638078 ); rc=$?; rm -f /tmp/.airflow-ha-validate-7b2ed1941c638078; exit "$rc" )
# write /etc/haproxy/haproxy.cfg (1865 bytes, root:haproxy 0640)
# task: service haproxy enabled, started
( systemctl enable haproxy )
( systemctl start haproxy )
# handler: reload haproxy
( systemctl reload haproxy )

# == step: keepalived
# task: packages present keepalived
( dnf install -y -q keepalived )
# task: template /etc/keepalived/keepalived.conf
# write /tmp/.airflow-ha-validate-6cac18bb3b18bd8a (1244 bytes, root:root 0600)
( ( keepalived -t -f /tmp/.airflow-ha-validate-6cac18bb3b18bd8a ); rc=$?; rm -f /tmp/.airflow-ha-validate-6cac18bb3b18bd8a; exit "$rc" )
# write /etc/keepalived/keepalived.conf (1244 bytes, root:root 0644)
# task: service keepalived enabled, started
( systemctl enable keepalived )
( systemctl start keepalived )
# handler: reload keepalived
( systemctl reload keepalived )
