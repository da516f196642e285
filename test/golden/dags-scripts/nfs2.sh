#!/bin/sh
# airflow-ha apply --playbook dags on a fresh Rocky/RHEL 9 host: nfs2 (fixed test secrets)
set -e

# == step: host identity
# task: file /etc/hostname
# write /etc/hostname (5 bytes, root:root 0644)
# task: hostname nfs2
( hostname nfs2 )
# task: block "cluster airflow-seed" in /etc/hosts
# write /etc/hosts (401 bytes, root:root 0644)

# == step: dags: nfs servers
# task: packages present nfs-utils rsync rsync-daemon
( dnf install -y -q nfs-utils rsync rsync-daemon )
# task: directory /srv/airflow/dags
( install -d -m 0755 -o root -g root /srv/airflow/dags )
# task: directory /etc/exports.d
( install -d -m 0755 -o root -g root /etc/exports.d )
# task: file /etc/exports.d/airflow-ha-dags.exports
# write /etc/exports.d/airflow-ha-dags.exports (418 bytes, root:root 0644)
# task: service nfs-server enabled, started
( systemctl enable nfs-server )
( systemctl start nfs-server )
# task: template /etc/rsyncd.conf
# write /etc/rsyncd.conf (503 bytes, root:root 0644)
# task: service rsyncd enabled, started
( systemctl enable rsyncd )
( systemctl start rsyncd )
# task: template /usr/local/sbin/airflow-ha-dags-pull
# write /usr/local/sbin/airflow-ha-dags-pull (596 bytes, root:root 0755)
# task: unit /etc/systemd/system/airflow-ha-dags-pull.service
# write /etc/systemd/system/airflow-ha-dags-pull.service (294 bytes, root:root 0644)
( systemctl daemon-reload )
# task: unit /etc/systemd/system/airflow-ha-dags-pull.timer
# write /etc/systemd/system/airflow-ha-dags-pull.timer (251 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-ha-dags-pull.timer enabled, started
( systemctl enable airflow-ha-dags-pull.timer )
( systemctl start airflow-ha-dags-pull.timer )
# handler: exportfs -ra
( exportfs -ra )
# handler: restart rsyncd
( systemctl reset-failed rsyncd 2>/dev/null; systemctl restart rsyncd )
# handler: restart airflow-ha-dags-pull.timer
( systemctl reset-failed airflow-ha-dags-pull.timer 2>/dev/null; systemctl restart airflow-ha-dags-pull.timer )

# == step: dags: nfs VIP (keepalived)
# task: packages present keepalived
( dnf install -y -q keepalived )
# task: template /etc/keepalived/keepalived.conf
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-d3e219564361f1dd (1364 bytes, root:root 0600)
( ( keepalived -t -f /var/lib/airflow-ha/tmp/validate-d3e219564361f1dd ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-d3e219564361f1dd; exit "$rc" )
# write /etc/keepalived/keepalived.conf (1364 bytes, root:root 0644)
# task: service keepalived enabled, started
( systemctl enable keepalived )
( systemctl start keepalived )
# handler: reload keepalived
( systemctl reload keepalived )

# == step: dags: nfs clients
# task: packages present nfs-utils
( dnf install -y -q nfs-utils )
# task: unit /etc/systemd/system/opt-airflow-dags.mount
# write /etc/systemd/system/opt-airflow-dags.mount (759 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service opt-airflow-dags.mount enabled, started
( systemctl enable opt-airflow-dags.mount )
( systemctl start opt-airflow-dags.mount )
# handler: restart opt-airflow-dags.mount
( systemctl reset-failed opt-airflow-dags.mount 2>/dev/null; systemctl restart opt-airflow-dags.mount )
