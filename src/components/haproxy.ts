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
import { reloadHandler, service } from '../tasks/systemd.js';
import { selinuxBooleans } from '../tasks/selinux.js';
import { sysctl } from '../tasks/system.js';
import { renderTemplate, template } from '../tasks/template.js';
import type { Task } from '../tasks/task.js';

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
    // Debian's package ships /run/haproxy (RuntimeDirectory); RHEL's config uses /var/lib/haproxy/stats.
    stats_socket: family === 'debian' ? '/run/haproxy/admin.sock' : '/var/lib/haproxy/stats',
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
  return [
    sysctl({ file: '60-airflow-ha-haproxy.conf', values: { 'net.ipv4.ip_nonlocal_bind': '1' } }),
    packages({ names: ['haproxy'] }),
    // cluster.tls: the certificate file before the config that names it (`haproxy -c` opens it).
    ...tlsHaproxyPemTask(inv, host, tls, [reloadHandler('haproxy')]),
    ...(family === 'rhel' ? [selinuxBooleans(HAPROXY_SELINUX_BOOLEANS)] : []),
    template({
      path: HAPROXY_CFG,
      template: 'haproxy/haproxy.cfg.njk',
      vars: haproxyVars(inv, host, secrets, family, uiCheck),
      // The file holds the stats password: not world-readable (haproxy reads it as root before dropping privileges).
      mode: '0640',
      owner: 'root',
      group: 'haproxy',
      validate: (tmp) => sh`haproxy -c -q -f ${tmp}`,
      notify: [reloadHandler('haproxy')],
    }),
    service({ name: 'haproxy', enabled: true, state: 'started' }),
  ];
}
