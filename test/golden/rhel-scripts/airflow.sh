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
# task: packages present tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock
( dnf install -y -q tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock )
# task: time zone Asia/Tehran
( test -e /usr/share/zoneinfo/Asia/Tehran && ln -sfn /usr/share/zoneinfo/Asia/Tehran /etc/localtime )
# task: service chronyd enabled, started
( systemctl enable chronyd )
( systemctl start chronyd )
# task: template /etc/firewalld/zones/airflow-ha.xml
# write /tmp/.airflow-ha-validate-2bd29c21da4cd1fe (1264 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /tmp/.airflow-ha-validate-2bd29c21da4cd1fe "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /tmp/.airflow-ha-validate-2bd29c21da4cd1fe; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (1264 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )

# == step: haproxy
# task: sysctl net.ipv4.ip_nonlocal_bind
# write /etc/sysctl.d/60-airflow-ha-haproxy.conf (54 bytes, root:root 0644)
( sysctl -q -w net.ipv4.ip_nonlocal_bind=1 )
# task: packages present haproxy
( dnf install -y -q haproxy )
# task: selinux booleans haproxy_connect_any=on
( setsebool -P haproxy_connect_any=on )
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
# task: directory /usr/libexec/keepalived
( install -d -m 0755 -o root -g root /usr/libexec/keepalived )
# task: file /usr/libexec/keepalived/airflow-ha-chk_haproxy
# write /usr/libexec/keepalived/airflow-ha-chk_haproxy (173 bytes, root:root 0755)
# task: selinux type keepalived_unconfined_script_exec_t on /usr/libexec/keepalived
( restorecon -R /usr/libexec/keepalived )
# task: template /etc/keepalived/keepalived.conf
# write /tmp/.airflow-ha-validate-334e8587d9dc4e07 (1246 bytes, root:root 0600)
( ( keepalived -t -f /tmp/.airflow-ha-validate-334e8587d9dc4e07 ); rc=$?; rm -f /tmp/.airflow-ha-validate-334e8587d9dc4e07; exit "$rc" )
# write /etc/keepalived/keepalived.conf (1246 bytes, root:root 0644)
# task: service keepalived enabled, started
( systemctl enable keepalived )
( systemctl start keepalived )
# handler: reload keepalived
( systemctl reload keepalived )
