#!/bin/sh
# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: sql2 (fixed test secrets)
set -e

# == step: base system
# task: file /etc/hostname
# write /etc/hostname (5 bytes, root:root 0644)
# task: hostname sql2
( hostname sql2 )
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
# write /var/lib/airflow-ha/tmp/validate-b9f065ea556559ac (3643 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /var/lib/airflow-ha/tmp/validate-b9f065ea556559ac "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-b9f065ea556559ac; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (3643 bytes, root:root 0644)
# task: service firewalld enabled, started
( systemctl enable firewalld )
( systemctl start firewalld )
# handler: firewall-cmd --reload
( firewall-cmd --reload )

# == step: etcd
# task: template /etc/etcd/etcd.conf
# write /etc/etcd/etcd.conf (869 bytes, root:root 0644)
# task: template /etc/yum.repos.d/airflow-ha-pgdg.repo
# write /etc/yum.repos.d/airflow-ha-pgdg.repo (1122 bytes, root:root 0644)
# task: dnf module postgresql disabled
( dnf -qy module disable postgresql )
# task: packages present etcd
( dnf install -y -q 'etcd-3.5.17*' )
( dnf versionlock add etcd )
# task: service etcd enabled, started
( systemctl enable etcd )
( systemctl start etcd )

# == step: etcd restart
# task: restart etcd for its new config (one member at a time)
( (systemctl restart etcd && end=$(( $(date +%s) + 120 )); until test "$(ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=4s --endpoints=http://192.168.83.148:2379,http://192.168.83.147:2379,http://192.168.83.149:2379 endpoint health --cluster 2>&1 | grep -c ' is healthy')" -eq 3; do if [ "$(date +%s)" -ge "$end" ]; then echo 'timed out after 120 s waiting for "test "$(ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=4s --endpoints=http://192.168.83.148:2379,http://192.168.83.147:2379,http://192.168.83.149:2379 endpoint health --cluster 2>&1 | grep -c '\'' is healthy'\'')" -eq 3"' >&2; exit 1; fi; sleep 1; done) && rm -f /var/lib/airflow-ha/pending/etcd-restart )

# == step: patroni replicas
# task: template /etc/yum.repos.d/airflow-ha-pgdg.repo
# write /etc/yum.repos.d/airflow-ha-pgdg.repo (1122 bytes, root:root 0644)
# task: dnf module postgresql disabled
( dnf -qy module disable postgresql )
# task: packages present postgresql15-server patroni patroni-etcd
( dnf install -y -q postgresql15-server 'patroni-4.0.4*' 'patroni-etcd-4.0.4*' )
( dnf versionlock add patroni patroni-etcd )
# task: directory /etc/patroni
( install -d -m 0750 -o root -g postgres /etc/patroni )
# task: directory /var/lib/pgsql/15
( install -d -m 0755 -o postgres -g postgres /var/lib/pgsql/15 )
# task: template /etc/patroni/patroni.yml
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-4d3ae2c293772f0a (4081 bytes, root:root 0600)
( ( out=$(patroni --validate-config /var/lib/airflow-ha/tmp/validate-4d3ae2c293772f0a 2>&1); rc=$?; if [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -v -e 'is already in use' -e '^$' | grep -q .; then printf '%s\n' "$out" >&2; exit 1; fi; exit 0 ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-4d3ae2c293772f0a; exit "$rc" )
# write /etc/patroni/patroni.yml (4081 bytes, postgres:postgres 0600)
# task: service patroni enabled, started
( systemctl enable patroni )
( systemctl start patroni )
# task: wait for http://192.168.83.147:8008/health
( end=$(( $(date +%s) + 300 )); until timeout 2 bash -c 'exec 3<>/dev/tcp/192.168.83.147/8008 && printf '\''GET %s HTTP/1.0\r\nHost: %s\r\n\r\n'\'' /health 192.168.83.147:8008 >&3 && IFS='\'' '\'' read -r _ code _ <&3 && case "$code" in 2??) exit 0;; *) exit 1;; esac' 2>/dev/null; do if [ "$(date +%s)" -ge "$end" ]; then echo 'timed out after 300 s waiting for http://192.168.83.147:8008/health' >&2; exit 1; fi; sleep 2; done )

# == step: patroni cluster settings

# == step: airflow database

# == step: postgresql restart: replicas
# task: restart PostgreSQL if a new setting needs it (replicas, one at a time)
( (st() { python3 -c 'import json,ssl,sys,urllib.request as u
c=ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv)>2 else None
try:
 d=json.load(u.urlopen(sys.argv[1],timeout=3,context=c))
except Exception:
 d={}
print(d.get("role","unknown"),"pending" if d.get("pending_restart") else "clean",str(d.get("state","unknown")).replace(" ","_"))' http://192.168.83.147:8008/patroni  2>/dev/null || echo 'unknown clean unknown'; }; since=$(stat -c %Y /var/lib/airflow-ha/pending/patroni-restart-check); i=0; extra=0; s=$(st); while [ "$i" -lt 7 ]; do case "$s" in *' pending '*) break;; esac; if [ "$(runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -d postgres -c 'select extract(epoch from pg_conf_load_time())::bigint' 2>/dev/null || echo 0)" -ge "$since" ]; then extra=$((extra + 1)); [ "$extra" -gt 2 ] && break; fi; sleep 1; i=$((i + 1)); s=$(st); done; case "$s" in *' pending '*) patronictl -c /etc/patroni/patroni.yml restart --force airflow-seed sql2 >&2 || exit 1; end=$(( $(date +%s) + 300 )); until st | grep -q '^[a-z]* clean running$'; do if [ "$(date +%s)" -ge "$end" ]; then echo 'timed out after 300 s waiting for "st | grep -q '\''^[a-z]* clean running$'\''"' >&2; exit 1; fi; sleep 2; done;; esac) && rm -f /var/lib/airflow-ha/pending/patroni-restart-check )

# == step: postgresql restart: leader
# task: restart PostgreSQL if a new setting needs it (the leader)
( (st() { python3 -c 'import json,ssl,sys,urllib.request as u
c=ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv)>2 else None
try:
 d=json.load(u.urlopen(sys.argv[1],timeout=3,context=c))
except Exception:
 d={}
print(d.get("role","unknown"),"pending" if d.get("pending_restart") else "clean",str(d.get("state","unknown")).replace(" ","_"))' http://192.168.83.147:8008/patroni  2>/dev/null || echo 'unknown clean unknown'; }; since=$(stat -c %Y /var/lib/airflow-ha/pending/patroni-restart-check); i=0; extra=0; s=$(st); while [ "$i" -lt 7 ]; do case "$s" in *' pending '*) break;; esac; if [ "$(runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -d postgres -c 'select extract(epoch from pg_conf_load_time())::bigint' 2>/dev/null || echo 0)" -ge "$since" ]; then extra=$((extra + 1)); [ "$extra" -gt 2 ] && break; fi; sleep 1; i=$((i + 1)); s=$(st); done; case "$s" in *' pending '*) patronictl -c /etc/patroni/patroni.yml restart --force airflow-seed sql2 >&2 || exit 1; end=$(( $(date +%s) + 300 )); until st | grep -q '^[a-z]* clean running$'; do if [ "$(date +%s)" -ge "$end" ]; then echo 'timed out after 300 s waiting for "st | grep -q '\''^[a-z]* clean running$'\''"' >&2; exit 1; fi; sleep 2; done;; esac) && rm -f /var/lib/airflow-ha/pending/patroni-restart-check )
