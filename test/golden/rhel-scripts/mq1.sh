#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: mq1 (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (4 bytes, root:root 0644)
# task: hostname mq1
( hostname mq1 )
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
# write /var/lib/airflow-ha/tmp/validate-736525a5d3bc60b8 (4207 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /var/lib/airflow-ha/tmp/validate-736525a5d3bc60b8 "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-736525a5d3bc60b8; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (4207 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )

# == step: rabbitmq nodes
# task: group rabbitmq
( groupadd --system rabbitmq )
# task: user rabbitmq
( useradd --system --create-home --home-dir /var/lib/rabbitmq --shell /sbin/nologin --gid rabbitmq rabbitmq )
# task: directory /var/lib/rabbitmq
( install -d -m 0755 -o rabbitmq -g rabbitmq /var/lib/rabbitmq )
# task: file /var/lib/rabbitmq/.erlang.cookie (secret)
# write /var/lib/rabbitmq/.erlang.cookie (24 bytes, rabbitmq:rabbitmq 0400)
# task: directory /etc/rabbitmq
( install -d -m 0755 -o rabbitmq -g rabbitmq /etc/rabbitmq )
# task: template /etc/rabbitmq/rabbitmq.conf
# write /etc/rabbitmq/rabbitmq.conf (1551 bytes, root:root 0644)
# task: file /etc/rabbitmq/enabled_plugins
# write /etc/rabbitmq/enabled_plugins (23 bytes, rabbitmq:rabbitmq 0644)
# task: template /etc/rabbitmq/definitions.json
# write /etc/rabbitmq/definitions.json (839 bytes, root:rabbitmq 0640)
# task: template /etc/yum.repos.d/airflow-ha-rabbitmq.repo
# write /etc/yum.repos.d/airflow-ha-rabbitmq.repo (1796 bytes, root:root 0644)
# task: packages present erlang rabbitmq-server
( dnf install -y -q 'erlang-26.2.5*' 'rabbitmq-server-3.13.7*' )
( dnf versionlock add erlang rabbitmq-server )
# task: service rabbitmq-server enabled, started
( systemctl enable rabbitmq-server )
( systemctl start rabbitmq-server )
# task: wait for http://127.0.0.1:15672/
( end=$(( $(date +%s) + 180 )); until timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/15672 && printf '\''GET %s HTTP/1.0\r\nHost: %s\r\n\r\n'\'' / 127.0.0.1:15672 >&3 && IFS='\'' '\'' read -r _ code _ <&3 && case "$code" in 2??) exit 0;; *) exit 1;; esac' 2>/dev/null; do if [ "$(date +%s)" -ge "$end" ]; then echo 'timed out after 180 s waiting for http://127.0.0.1:15672/' >&2; exit 1; fi; sleep 2; done )
# task: delete the guest user
( rabbitmqctl -q delete_user guest )
# handler: restart rabbitmq-server (if it started before its config changed)
( ts=$(systemctl show -p ActiveEnterTimestamp --value rabbitmq-server); started=$(date -d "$ts" +%s 2>/dev/null || echo 0); newest=$(stat -c %Y /etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/enabled_plugins | sort -n | tail -1); if [ "$newest" -ge "$started" ]; then if systemctl -q is-active rabbitmq-server; then rabbitmq-queues -q check_if_node_is_quorum_critical || exit 1; fi; systemctl restart rabbitmq-server; fi )
( end=$(( $(date +%s) + 120 )); until rabbitmq-diagnostics -q check_running; do if [ "$(date +%s)" -ge "$end" ]; then echo 'timed out after 120 s waiting for "rabbitmq-diagnostics -q check_running"' >&2; exit 1; fi; sleep 2; done )
# handler: rabbitmqctl import_definitions
( end=$(( $(date +%s) + 120 )); until rabbitmq-diagnostics -q check_running; do if [ "$(date +%s)" -ge "$end" ]; then echo 'timed out after 120 s waiting for "rabbitmq-diagnostics -q check_running"' >&2; exit 1; fi; sleep 2; done )
( rabbitmqctl -q import_definitions /etc/rabbitmq/definitions.json )
