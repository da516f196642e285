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
# task: packages present tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock
( dnf install -y -q tzdata chrony firewalld sudo ca-certificates python3 policycoreutils-python-utils python3-dnf-plugin-versionlock )
# task: time zone Asia/Tehran
( test -e /usr/share/zoneinfo/Asia/Tehran && ln -sfn /usr/share/zoneinfo/Asia/Tehran /etc/localtime )
# task: service chronyd enabled, started
( systemctl enable chronyd )
( systemctl start chronyd )
# task: template /etc/firewalld/zones/airflow-ha.xml
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-541e3ed76d4258a4 (5146 bytes, root:root 0600)
( ( d=$(mktemp -d) && mkdir "$d/zones" && cp /var/lib/airflow-ha/tmp/validate-541e3ed76d4258a4 "$d/zones/"airflow-ha.xml && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc" ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-541e3ed76d4258a4; exit "$rc" )
# write /etc/firewalld/zones/airflow-ha.xml (5146 bytes, root:root 0644)
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
# task: server state file /var/lib/haproxy/server-state
( echo 1 > /var/lib/haproxy/server-state )
# task: template /etc/haproxy/haproxy.cfg
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-c49b0746a3f14464 (3788 bytes, root:root 0600)
( ( haproxy -c -q -f /var/lib/airflow-ha/tmp/validate-c49b0746a3f14464 ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-c49b0746a3f14464; exit "$rc" )
# write /etc/haproxy/haproxy.cfg (3788 bytes, root:haproxy 0640)
# task: service haproxy enabled, started
( systemctl enable haproxy )
( systemctl start haproxy )
# handler: reload haproxy (server states kept)
( python3 -c 'import socket
def ask(path, q):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(q.encode() + b"\n")
        out = b""
        while True:
            c = s.recv(65536)
            if not c: break
            out += c
        return out.decode()
    finally:
        s.close()
import os, subprocess, sys, time
sock, cfg, state, reload = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def pid():
    try:
        return next((l[5:].strip() for l in ask(sock, "show info").splitlines() if l.startswith("Pid: ")), None)
    except OSError:
        return None
def servers():
    want, sec = set(), None
    for line in open(cfg):
        w = line.split()
        if len(w) >= 2 and w[0] in ("listen", "backend"): sec = w[1]
        elif len(w) >= 3 and w[0] == "server" and sec and ":" in w[2]:
            addr, port = w[2].rsplit(":", 1)
            opts = w[3:]
            check = opts[opts.index("port") + 1] if "port" in opts[:-1] else port
            want.add((sec, w[1], addr, port, "1" if "ssl" in opts else "0", check))
    return want
def write(lines):
    tmp = state + ".tmp"
    with open(tmp, "w") as f: f.write("\n".join(lines) + "\n")
    os.rename(tmp, state)
old, keep = pid(), ["1"]
if old:
    try:
        lines, want = ask(sock, "show servers state").splitlines(), servers()
        keep += [l for l in lines[1:2] if l.startswith("#")]
        keep += [l for l in lines[2:] if len(l.split()) >= 22 and tuple(l.split()[i] for i in (1, 3, 4, 18, 20, 21)) in want]
    except OSError:
        pass
write(keep)
rc = subprocess.run(reload).returncode
end = time.time() + 15
while old and rc == 0 and pid() in (old, None) and time.time() < end: time.sleep(0.2)
write(["1"])
sys.exit(rc)' /var/lib/haproxy/stats /etc/haproxy/haproxy.cfg /var/lib/haproxy/server-state systemctl reload haproxy )

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
( d=/var/lib/airflow-ha/tmp; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" 'is a symlink or not a directory: refusing to use it for validate copies' >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d" )
# write /var/lib/airflow-ha/tmp/validate-195df771309e0236 (1379 bytes, root:root 0600)
( ( keepalived -t -f /var/lib/airflow-ha/tmp/validate-195df771309e0236 ); rc=$?; rm -f /var/lib/airflow-ha/tmp/validate-195df771309e0236; exit "$rc" )
# write /etc/keepalived/keepalived.conf (1379 bytes, root:root 0644)
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

# == step: airflow install
# task: packages present python3.11
( dnf install -y -q python3.11 )
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
( if systemctl -q is-active airflow-webserver.service; then systemctl restart airflow-webserver.service; fi )

# == step: airflow config
# task: directory /etc/airflow-ha
( install -d -m 0755 -o root -g root /etc/airflow-ha )
# task: file /etc/airflow-ha/airflow.env
# write /etc/airflow-ha/airflow.env (159 bytes, root:root 0644)
# task: template /opt/airflow/airflow.cfg
# write /opt/airflow/airflow.cfg (2210 bytes, root:airflow 0640)
# handler: restart the running Airflow services
( if systemctl -q is-active airflow-webserver.service; then systemctl restart airflow-webserver.service; fi )

# == step: airflow services
# task: unit /etc/systemd/system/airflow-webserver.service
# write /etc/systemd/system/airflow-webserver.service (903 bytes, root:root 0644)
( systemctl daemon-reload )
# task: service airflow-webserver.service enabled, started
( systemctl enable airflow-webserver.service )
( systemctl start airflow-webserver.service )
# handler: restart airflow-webserver.service
( systemctl reset-failed airflow-webserver.service 2>/dev/null; systemctl restart airflow-webserver.service )
