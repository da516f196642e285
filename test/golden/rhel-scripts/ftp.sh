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
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-11a13d2347bd1fb9 (3509 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /var/lib/airflow-ha/tmp/validate-11a13d2347bd1fb9 "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-11a13d2347bd1fb9; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (3509 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )

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
# write /var/lib/airflow-ha/tmp/validate-7b94a362de1e521e (1363 bytes, root:root 0600)
( ( keepalived -t -f /var/lib/airflow-ha/tmp/validate-7b94a362de1e521e ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-7b94a362de1e521e; exit "$rc" )
# write /etc/keepalived/keepalived.conf (1363 bytes, root:root 0644)
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

# == step: ftp
# task: packages present vsftpd openssl
( dnf install -y -q vsftpd openssl )
# task: user dagdrop
( useradd --create-home --home-dir /srv/ftp/dagdrop --shell /usr/sbin/nologin dagdrop )
# task: password of dagdrop
# write /root/.airflow-ha-chpasswd-dagdrop (115 bytes, root:root 0600)
( chpasswd -e < /root/.airflow-ha-chpasswd-dagdrop; rc=$?; rm -f /root/.airflow-ha-chpasswd-dagdrop; exit "$rc" )
# task: directory /srv/ftp/dagdrop
( install -d -m 0755 -o root -g root /srv/ftp/dagdrop )
# task: directory /srv/ftp/dagdrop/upload
( install -d -m 0750 -o dagdrop -g dagdrop /srv/ftp/dagdrop/upload )
# task: TLS certificate /etc/ssl/certs/airflow-ha-vsftpd.pem
( umask 077 && openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj /CN=ftp -keyout /etc/ssl/private/airflow-ha-vsftpd.key.new -out /etc/ssl/certs/airflow-ha-vsftpd.pem.new 2>/dev/null && chmod 0644 /etc/ssl/certs/airflow-ha-vsftpd.pem.new && mv /etc/ssl/private/airflow-ha-vsftpd.key.new /etc/ssl/private/airflow-ha-vsftpd.key && mv /etc/ssl/certs/airflow-ha-vsftpd.pem.new /etc/ssl/certs/airflow-ha-vsftpd.pem )
# task: directory /etc/airflow-ha
( install -d -m 0755 -o root -g root /etc/airflow-ha )
# task: file /etc/airflow-ha/vsftpd.users
# write /etc/airflow-ha/vsftpd.users (8 bytes, root:root 0644)
# task: file /etc/pam.d/vsftpd-airflow-ha
# write /etc/pam.d/vsftpd-airflow-ha (173 bytes, root:root 0644)
# task: template /etc/vsftpd/vsftpd.conf
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-9551bb4631d66965 (1260 bytes, root:root 0600)
( ( t=$(mktemp) || exit 1; timeout 5 vsftpd /var/lib/airflow-ha/tmp/validate-9551bb4631d66965 -olisten=NO -olisten_ipv6=NO 0<>"$t" >/dev/null 2>&1; out=$(cat "$t"); rm -f "$t"; case "$out" in *'must be started from inetd'*) exit 0;; esac; echo "vsftpd refuses this config: $out" >&2; exit 1 ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-9551bb4631d66965; exit "$rc" )
# write /etc/vsftpd/vsftpd.conf (1260 bytes, root:root 0644)
# task: service vsftpd enabled, started
( systemctl enable vsftpd )
( systemctl start vsftpd )
# handler: restart vsftpd
( systemctl reset-failed vsftpd 2>/dev/null; systemctl restart vsftpd )

# == step: airflow install
# task: packages present python3.11 etcd
( dnf install -y -q python3.11 etcd )
# task: group airflow
( groupadd --system airflow )
# task: user airflow
( useradd --system --create-home --home-dir /opt/airflow --shell /sbin/nologin --gid airflow airflow )
# task: directory /opt/airflow
( install -d -m 0755 -o root -g root /opt/airflow )
# task: directory /opt/airflow/logs
( install -d -m 0755 -o airflow -g airflow /opt/airflow/logs )
# task: directory /opt/airflow/state
( install -d -m 0750 -o airflow -g airflow /opt/airflow/state )
# task: virtualenv /opt/airflow/venv-2.9.0 is root's alone (else rebuilt)
( rm -rf -- /opt/airflow/venv-2.9.0 )
# task: virtualenv /opt/airflow/venv-2.9.0
( python3.11 -m venv /opt/airflow/venv-2.9.0 )
# task: apache-airflow 2.9.0 (pypi)
( /opt/airflow/venv-2.9.0/bin/pip install --disable-pip-version-check --no-input --constraint https://raw.githubusercontent.com/apache/airflow/constraints-2.9.0/constraints-3.11.txt 'apache-airflow[celery,postgres]==2.9.0' )
# task: /opt/airflow/venv -> venv-2.9.0
( rm -rf -- /opt/airflow/venv.new && ln -s venv-2.9.0 /opt/airflow/venv.new && if [ -d /opt/airflow/venv ] && [ ! -L /opt/airflow/venv ]; then rm -rf -- /opt/airflow/venv.pre-versioned && mv -T /opt/airflow/venv /opt/airflow/venv.pre-versioned; fi && mv -T /opt/airflow/venv.new /opt/airflow/venv && rm -rf -- /opt/airflow/venv.pre-versioned )
# handler: restart the running Airflow services
( if systemctl -q is-active airflow-dag-processor.service; then systemctl restart airflow-dag-processor.service; fi )

# == step: airflow config
# task: directory /etc/airflow-ha
( install -d -m 0755 -o root -g root /etc/airflow-ha )
# task: file /etc/airflow-ha/airflow.env
# write /etc/airflow-ha/airflow.env (159 bytes, root:root 0644)
# task: template /opt/airflow/airflow.cfg
# write /opt/airflow/airflow.cfg (2210 bytes, root:airflow 0640)
# handler: restart the running Airflow services
( if systemctl -q is-active airflow-dag-processor.service; then systemctl restart airflow-dag-processor.service; fi )

# == step: airflow services
# task: unit /etc/systemd/system/airflow-dag-processor.service
# write /etc/systemd/system/airflow-dag-processor.service (1073 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-dag-processor.service enabled, started
( systemctl enable airflow-dag-processor.service )
( systemctl start airflow-dag-processor.service )
# handler: restart airflow-dag-processor.service
( systemctl reset-failed airflow-dag-processor.service 2>/dev/null; systemctl restart airflow-dag-processor.service )
