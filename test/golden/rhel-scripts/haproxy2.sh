#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: haproxy2 (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (9 bytes, root:root 0644)
# task: hostname haproxy2
( hostname haproxy2 )
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
# write /tmp/.airflow-ha-validate-c9872b00ad30d997 (1149 bytes, root:root 0600)
( ( nft -c -f /tmp/.airflow-ha-validate-c9872b00ad30d997 ); rc=$?; rm -f /tmp/.airflow-ha-validate-c9872b00ad30d997; exit "$rc" )
# write /etc/airflow-ha/firewall.nft (1149 bytes, root:root 0644)
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
# write /tmp/.airflow-ha-validate-d907e928333f4f8d (1865 bytes, root:root 0600)
( ( haproxy -c -q -f /tmp/.airflow-ha-validate-d907e928333f4f8d ); rc=$?; rm -f /tmp/.airflow-ha-validate-d907e928333f4f8d; exit "$rc" )
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
# write /tmp/.airflow-ha-validate-cceda28e13ca359f (1245 bytes, root:root 0600)
( ( keepalived -t -f /tmp/.airflow-ha-validate-cceda28e13ca359f ); rc=$?; rm -f /tmp/.airflow-ha-validate-cceda28e13ca359f; exit "$rc" )
# write /etc/keepalived/keepalived.conf (1245 bytes, root:root 0644)
# task: service keepalived enabled, started
( systemctl enable keepalived )
( systemctl start keepalived )
# handler: reload keepalived
( systemctl reload keepalived )
