/**
 * HAProxy in front of the Patroni cluster: a leader port, a replica port and a stats page on every
 * host of role `haproxy`. Desired state only: the runner executes the tasks.
 * Facts and pitfalls: ../shared/reference/ha-stack.md "HAProxy".
 */
import { airflowLayout } from './airflow-layout.js';
import { CA_CERT, HAPROXY_PEM, tlsEnabled } from '../tls/plan.js';
import { tlsHaproxyPemTask } from './tls.js';
import type { TlsMaterial } from '../run/playbook.js';
import { sh } from '../core/cmd.js';
import type { OsFamily } from '../facts/host.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import { monitored } from '../inventory/ports.js';
import type { Host, Inventory, Vip } from '../inventory/schema.js';
import { packages } from '../tasks/package.js';
import { command } from '../tasks/command.js';
import { exec } from '../core/op.js';
import type { Handler, Task } from '../tasks/task.js';
import { service } from '../tasks/systemd.js';
import { selinuxBooleans } from '../tasks/selinux.js';
import { sysctl } from '../tasks/system.js';
import { renderTemplate, template } from '../tasks/template.js';

/** Where HAProxy's config lives (same path on Debian 12 and RHEL 9). */
export const HAPROXY_CFG = '/etc/haproxy/haproxy.cfg';

/**
 * Default connection limit, global and per listener. Airflow opens many pooled connections
 * (SQLAlchemy pool_size 5 + max_overflow 10 per process, times schedulers, webserver workers,
 * Celery worker processes, triggerers); Patroni's example value of 100 is far too low.
 * Override per host with `vars.haproxyMaxconn`.
 */
export const DEFAULT_MAXCONN = 4000;

/**
 * Client/server idle timeout: above SQLAlchemy's `pool_recycle` (1800 s), so HAProxy never cuts a
 * connection the pool still considers usable. Override with `vars.haproxyTimeout` (HAProxy time format).
 */
export const DEFAULT_TIMEOUT = '1h';

/**
 * HAProxy's server state file (`server-state-file`, read by `load-server-state-from-file global`
 * when a process starts). Between reloads it holds only the format version line (`1`): a missing
 * file makes every start and `haproxy -c` warn, an empty one too ("Can't get version"), both
 * checked on Debian 12's haproxy 2.6.12.
 */
export const HAPROXY_STATE_FILE = '/var/lib/haproxy/server-state';

/** HAProxy's admin socket (`stats socket`): Debian's package ships /run/haproxy (RuntimeDirectory); RHEL's config uses /var/lib/haproxy/stats. */
export function haproxyStatsSocket(family: OsFamily): string {
  return family === 'debian' ? '/run/haproxy/admin.sock' : '/var/lib/haproxy/stats';
}

/**
 * Python (stdlib) that asks HAProxy's admin socket one command and returns its whole answer:
 * `ask(socket_path, command)` (2 s timeout; raises OSError when nothing listens). Management guide
 * "9.3 Unix Socket commands" (https://docs.haproxy.org/2.6/management.html#9.3). Shared by the
 * reload script and `status`'s `show stat`.
 */
export const HAPROXY_ASK_PY = [
  'import socket',
  'def ask(path, q):',
  '    s = socket.socket(socket.AF_UNIX)',
  '    s.settimeout(2)',
  '    try:',
  '        s.connect(path)',
  '        s.sendall(q.encode() + b"\\n")',
  '        out = b""',
  '        while True:',
  '            c = s.recv(65536)',
  '            if not c: break',
  '            out += c',
  '        return out.decode()',
  '    finally:',
  '        s.close()',
].join('\n');

/**
 * The reload of HAProxy that keeps each server's UP/DOWN state, as python3 (every host has it;
 * argv: admin socket, the config being loaded, the state file, then the reload command).
 *
 * Why: a new HAProxy process starts every server UP until its first check
 * (haproxy's own words on the init-state patch, haproxy@formilux.org msg45283: "Servers are always
 * set in an UP status by default"; `init-state` exists only from HAProxy 3.1). On a reload, the
 * leader port then sends new connections round robin to the replicas for up to one check interval:
 * writes through the VIP fail with "read-only transaction". Measured on haproxy 2.6.12 with a 200
 * and a 503 check server: 0.3 s after `kill -USR2`, the 503 server was UP; with the state file, it
 * stayed DOWN throughout.
 *
 * What it does: asks the running process for `show servers state`, keeps the lines of servers the
 * new config still has with the same address, port, check port and `ssl` (a state line overrides the
 * config's address and port, checked on 2.6.12, so a server the config moved is left to its
 * checks), writes them to the state file (temporary file, then rename), runs the reload command,
 * waits up to 15 s until a new process answers on the socket (`show info` Pid: systemd 252's
 * `systemctl reload` returns once it has sent USR2, before the new process has read the file), then
 * puts the file back to its version line and exits with the reload's exit code. Without a running
 * process (a first start) it only reloads.
 * https://docs.haproxy.org/2.6/configuration.html#3.1-server-state-file,
 * https://docs.haproxy.org/2.6/management.html#9.3-show%20servers%20state
 */
export const HAPROXY_RELOAD_SCRIPT = [
  HAPROXY_ASK_PY,
  'import os, subprocess, sys, time',
  'sock, cfg, state, reload = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]',
  'def pid():',
  '    try:',
  '        return next((l[5:].strip() for l in ask(sock, "show info").splitlines() if l.startswith("Pid: ")), None)',
  '    except OSError:',
  '        return None',
  'def servers():',
  '    want, sec = set(), None',
  '    for line in open(cfg):',
  '        w = line.split()',
  '        if len(w) >= 2 and w[0] in ("listen", "backend"): sec = w[1]',
  '        elif len(w) >= 3 and w[0] == "server" and sec and ":" in w[2]:',
  '            addr, port = w[2].rsplit(":", 1)',
  '            opts = w[3:]',
  '            check = opts[opts.index("port") + 1] if "port" in opts[:-1] else port',
  '            want.add((sec, w[1], addr, port, "1" if "ssl" in opts else "0", check))',
  '    return want',
  'def write(lines):',
  '    tmp = state + ".tmp"',
  '    with open(tmp, "w") as f: f.write("\\n".join(lines) + "\\n")',
  '    os.rename(tmp, state)',
  'old, keep = pid(), ["1"]',
  'if old:',
  '    try:',
  '        lines, want = ask(sock, "show servers state").splitlines(), servers()',
  '        keep += [l for l in lines[1:2] if l.startswith("#")]',
  '        keep += [l for l in lines[2:] if len(l.split()) >= 22 and tuple(l.split()[i] for i in (1, 3, 4, 18, 20, 21)) in want]',
  '    except OSError:',
  '        pass',
  'write(keep)',
  'rc = subprocess.run(reload).returncode',
  'end = time.time() + 15',
  'while old and rc == 0 and pid() in (old, None) and time.time() < end: time.sleep(0.2)',
  'write(["1"])',
  'sys.exit(rc)',
].join('\n');

/**
 * Handler: reload haproxy keeping each server's state ({@link HAPROXY_RELOAD_SCRIPT}); id
 * `reload:haproxy`, one per run and host whichever task notified it. Errors: the reload's exit code.
 */
export function haproxyReloadHandler(family: OsFamily): Handler {
  return {
    id: 'reload:haproxy',
    name: 'reload haproxy (server states kept)',
    ops: [exec(sh`python3 -c ${HAPROXY_RELOAD_SCRIPT} ${haproxyStatsSocket(family)} ${HAPROXY_CFG} ${HAPROXY_STATE_FILE} systemctl reload haproxy`)],
  };
}

/** The VIPs held by the hosts of role `haproxy` (usually one: the cluster's main VIP). */
export function haproxyVips(inv: Inventory): Vip[] {
  return inv.cluster.vips.filter((v) => v.role === 'haproxy');
}

/**
 * The addresses HAProxy binds on `host`: the host's own address (each HAProxy can be checked
 * directly) and every haproxy VIP (clients use these). Binding a VIP the host does not hold needs
 * `net.ipv4.ip_nonlocal_bind=1` (see {@link haproxyTasks}).
 */
export function haproxyBinds(inv: Inventory, host: Host): string[] {
  return [host.address, ...haproxyVips(inv).map((v) => v.address)];
}

/** The user of HAProxy's stats page (`stats auth`), which `status` reads as CSV. */
export const HAPROXY_STATS_USER = 'admin';

/**
 * How HAProxy checks the UI servers: `http` on the layout's health path (the normal case), or
 * `tcp` (a connect) while `upgrade` moves the UI between Airflow majors, whose health paths differ
 * (`/health` on 2.x, `/api/v2/monitor/health` on 3.x): an HTTP check on either path would mark the
 * servers of the other major down during the rolling restart.
 */
export type UiCheck = 'http' | 'tcp';

/** The variables of templates/haproxy/haproxy.cfg.njk for `host`. */
export function haproxyVars(inv: Inventory, host: Host, secrets: ClusterSecrets, family: OsFamily, uiCheck: UiCheck = 'http'): Record<string, unknown> {
  const maxconn = Number(host.vars?.['haproxyMaxconn'] ?? DEFAULT_MAXCONN);
  if (!Number.isInteger(maxconn) || maxconn < 1) throw new Error(`host ${host.name}: vars.haproxyMaxconn must be a positive integer`);
  return {
    cluster: inv.cluster.name,
    ports: inv.cluster.ports,
    binds: haproxyBinds(inv, host),
    servers: inv.hosts.filter((h) => h.roles.includes('postgresql')).map((h) => ({ name: h.name, address: h.address })),
    // Airflow's UI behind the VIP on ports.webserverFrontend (only when webserver hosts exist).
    webservers: inv.hosts.filter((h) => h.roles.includes('webserver')).map((h) => ({ name: h.name, address: h.address })),
    // Each UI server is checked on its health path (Airflow 2 `/health`, Airflow 3 `/api/v2/monitor/health`: src/components/airflow-layout.ts).
    ui_health_path: airflowLayout(inv.cluster.versions.airflow).healthPath,
    ui_tcp_check: uiCheck === 'tcp',
    // Flower behind the VIP on ports.flowerFrontend (only when flower hosts exist).
    flowers: inv.hosts.filter((h) => h.roles.includes('flower')).map((h) => ({ name: h.name, address: h.address })),
    maxconn,
    timeout: String(host.vars?.['haproxyTimeout'] ?? DEFAULT_TIMEOUT),
    stats_socket: haproxyStatsSocket(family),
    state_file: HAPROXY_STATE_FILE,
    stats_user: HAPROXY_STATS_USER,
    stats_password: secrets.haproxyStats,
    // cluster.tls: the checks of Patroni's REST API over HTTPS, verified against the cluster CA;
    // Flower and the stats page served over HTTPS with the host's certificate (it names the VIP).
    tls: tlsEnabled(inv) ? { ca: CA_CERT, pem: HAPROXY_PEM } : false,
    // A monitored cluster: HAProxy's built-in Prometheus exporter on a frontend of its own, on the
    // host's address only (Debian 12's haproxy 2.6 is built with it: `haproxy -vv` "Built with the
    // Prometheus exporter as a service"; https://docs.haproxy.org/2.6/configuration.html "use-service").
    metrics: monitored(inv) ? { address: host.address, port: inv.cluster.ports.haproxyMetrics } : false,
  };
}

/** The haproxy.cfg `host` gets (pure; throws on an undefined template variable). */
export function haproxyConfig(inv: Inventory, host: Host, secrets: ClusterSecrets, family: OsFamily, uiCheck: UiCheck = 'http'): string {
  return renderTemplate('haproxy/haproxy.cfg.njk', haproxyVars(inv, host, secrets, family, uiCheck));
}

/**
 * SELinux booleans HAProxy needs on Rocky/RHEL (enforcing kept). haproxy_t may bind only a few
 * port types (commplex_main 5000, http 80/8008/..., http_cache 8080/...) and connect to a few
 * more, so the replica port 6000 (xserver_port_t), the stats port 7000 (gatekeeper_port_t) and
 * every PostgreSQL backend on 5432 (postgresql_port_t) would be denied. `haproxy_connect_any`
 * lets it bind and connect to any TCP port (selinux-policy rhcs.te, c9s branch: the tunable adds
 * corenet_tcp_connect_all_ports and corenet_tcp_bind_all_ports; `man haproxy_selinux`).
 */
export const HAPROXY_SELINUX_BOOLEANS = { haproxy_connect_any: true } as const;

/**
 * Tasks of one haproxy host: `ip_nonlocal_bind` (so the standby can bind the VIP it does not hold),
 * the package (Debian 12: haproxy 2.6; RHEL 9: haproxy 2.4+), with `cluster.tls` its certificate file
 * (`opts.tls`: the operator's TLS material), on RHEL the SELinux boolean
 * ({@link HAPROXY_SELINUX_BOOLEANS}) before haproxy starts, the config checked with
 * `haproxy -c -f` BEFORE it replaces the old one (a change reloads haproxy, which keeps
 * established sessions), and the service enabled and started.
 */
export function haproxyTasks(inv: Inventory, host: Host, secrets: ClusterSecrets, family: OsFamily, opts: { uiCheck?: UiCheck; tls?: TlsMaterial | undefined } = {}): Task[] {
  const { uiCheck = 'http', tls } = opts;
  const reload = haproxyReloadHandler(family);
  return [
    sysctl({ file: '60-airflow-ha-haproxy.conf', values: { 'net.ipv4.ip_nonlocal_bind': '1' } }),
    packages({ names: ['haproxy'] }),
    // cluster.tls: the certificate file before the config that names it (`haproxy -c` opens it).
    ...tlsHaproxyPemTask(inv, host, tls, [reload]),
    ...(family === 'rhel' ? [selinuxBooleans(HAPROXY_SELINUX_BOOLEANS)] : []),
    // The server state file the config names, with its version line (the package made the folder).
    command({ name: `server state file ${HAPROXY_STATE_FILE}`, cmd: sh`echo 1 > ${HAPROXY_STATE_FILE}`, creates: HAPROXY_STATE_FILE }),
    template({
      path: HAPROXY_CFG,
      template: 'haproxy/haproxy.cfg.njk',
      vars: haproxyVars(inv, host, secrets, family, uiCheck),
      // The file holds the stats password: not world-readable (haproxy reads it as root before dropping privileges).
      mode: '0640',
      owner: 'root',
      group: 'haproxy',
      validate: (tmp) => sh`haproxy -c -q -f ${tmp}`,
      notify: [reload],
    }),
    service({ name: 'haproxy', enabled: true, state: 'started' }),
  ];
}
