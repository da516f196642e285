/**
 * The network matrix of the stack: every TCP port a role listens on, and who may connect to it.
 * One table serves the port collision rules (src/inventory/rules.ts), the preflight's port check and
 * the firewall (src/components/base.ts), which accepts each port only from its clients' addresses.
 * Pure: no I/O.
 *
 * Sources of who talks to whom: ../reference/ha-stack.md; etcd clustering
 * (https://etcd.io/docs/v3.4/op-guide/clustering/), Patroni's REST API and HAProxy checks
 * (https://patroni.readthedocs.io/en/latest/rest_api.html), RabbitMQ's ports
 * (https://www.rabbitmq.com/docs/networking#ports), Airflow's log servers
 * (https://airflow.apache.org/docs/apache-airflow/2.9.0/administration-and-deployment/logging-monitoring/logging-tasks.html),
 * and what airflow-ha's own checks contact from which host (src/status/checks.ts, src/components/*).
 */
import { canonicalCidr, formatIpv4, parseCidr, parseIpv4 } from './net.js';
import type { Host, Inventory, Ports, Role } from './schema.js';

/** The roles that run an Airflow service (and get the virtualenv and airflow.cfg). */
export const AIRFLOW_ROLES: readonly Role[] = ['scheduler', 'webserver', 'triggerer', 'dag_processor', 'worker', 'flower'];

/**
 * Who may connect to a port: the hosts of a role (and that role's VIPs, which a VIP holder may use as
 * its source address), `operator` (the machines that run airflow-ha and read `airflow-ha endpoints`:
 * `cluster.firewall.operators` and, in a lab, `lab.address`), `network` (all of `cluster.network`), or
 * `dag-processor` (the hosts that run the DAG processor: role `dag_processor`, else the schedulers, as
 * src/components/airflow.ts dagProcessorHosts places it), or `airflow-metadata` (the Airflow hosts
 * that read the metadata database: {@link metadataClients}).
 */
export type PortClient = Role | 'operator' | 'network' | 'dag-processor' | 'airflow-metadata';

/**
 * The hosts whose Airflow reads the metadata database through HAProxy, by address: on Airflow 2
 * every Airflow host; on Airflow 3 every Airflow host but the worker-only ones, whose tasks reach
 * the database through the api-servers' Execution API
 * (https://airflow.apache.org/docs/apache-airflow/3.1.0/installation/upgrading_to_airflow3.html:
 * "The API server is currently the sole access point for the metadata DB for tasks and workers").
 */
export function metadataClients(inv: Inventory): Host[] {
  const airflow = inv.hosts.filter((h) => h.roles.some((r) => AIRFLOW_ROLES.includes(r)));
  if (Number(inv.cluster.versions.airflow.split('.')[0]) < 3) return airflow;
  return airflow.filter((h) => h.roles.some((r) => AIRFLOW_ROLES.includes(r) && r !== 'worker'));
}

/** One port (or range) a role listens on. `setting` is the `cluster.ports` key when configurable. */
export interface PortSpec {
  label: string;
  setting?: keyof Ports;
  range(ports: Ports): readonly [number, number];
  /** Who connects to it. Connections from the host itself (loopback, its own address) are always accepted. */
  clients: readonly PortClient[];
  /** Why these clients, one sentence (shown in the firewall file and the README table). */
  why: string;
  /** Listened on only when the inventory has a host of role `monitoring` (an exporter): see {@link monitored}. */
  monitored?: true;
  /** UDP too, not only TCP (Alertmanager's gossip, which memberlist sends over both). */
  udp?: true;
  /** Listened on only with `cluster.tls.enabled` (true) or only without it (false); unset: either way. */
  tls?: boolean;
}

/** Whether `inv` has a host of role `monitoring`: then every host runs node_exporter and each component its exporter. */
export function monitored(inv: Inventory): boolean {
  return inv.hosts.some((h) => h.roles.includes('monitoring'));
}

/** The specs of `list` that `inv` listens on: the exporters only when it is {@link monitored}, a {@link PortSpec.tls} one only with TLS on (or off). */
export function activeSpecs(inv: Inventory, list: readonly PortSpec[]): PortSpec[] {
  const on = monitored(inv);
  const tls = inv.cluster.tls.enabled;
  return list.filter((s) => (on || !s.monitored) && (s.tls === undefined || s.tls === tls));
}

const setting = (key: keyof Ports, clients: readonly PortClient[], why: string): PortSpec => ({ label: key, setting: key, range: (p) => [p[key], p[key]], clients, why });
/** An exporter's port, scraped by the monitoring hosts only. */
const exporter = (key: keyof Ports, why: string): PortSpec => ({ ...setting(key, ['monitoring'], why), monitored: true });
const fixed = (label: string, from: number, to: number, clients: readonly PortClient[], why: string): PortSpec => ({ label, range: () => [from, to], clients, why });

const AIRFLOW: readonly PortClient[] = AIRFLOW_ROLES;

/**
 * The TCP ports each role listens on and the clients of each. No port is UDP: VRRP is IP protocol
 * 112 (see {@link vrrpPeers}), NFS is NFSv4 over TCP (templates/dags/dags.mount.njk).
 * RabbitMQ's fixed ports: https://www.rabbitmq.com/docs/networking#ports — stream replication uses
 * 6000-6500, CLI tools take distribution port + 10000 .. + 10010. NFS: nfsd 2049, rpcbind 111, and the
 * rsync daemon the standby pulls from. FTP: 21 and vsftpd's passive data range (vsftpd.conf(5)
 * pasv_min_port/pasv_max_port). dag_processor and target listen on nothing the inventory configures
 * (the target's sshd is the host's SSH port, see {@link sshClients}).
 */
export const ROLE_PORTS: Readonly<Record<Role, readonly PortSpec[]>> = {
  etcd: [
    setting('etcdClient', ['etcd', 'postgresql', 'dag-processor'], 'Patroni keeps its leader key in etcd (its DCS); etcdctl on the members checks the whole cluster; the DAG processor hosts hold their active/standby lock (etcdctl lock)'),
    setting('etcdPeer', ['etcd'], 'raft between the etcd members'),
    exporter('etcdMetrics', "Prometheus scrapes etcd's /metrics on a listener of its own (--listen-metrics-urls), never the client API"),
  ],
  postgresql: [
    setting('postgres', ['postgresql', 'haproxy'], 'streaming replication and pg_rewind between Patroni nodes; HAProxy forwards the clients (a TCP proxy: PostgreSQL sees its address)'),
    setting('patroniApi', ['postgresql', 'haproxy', 'monitoring'], "HAProxy's health checks (/primary, /replica); Patroni nodes ask each other during a failover and the bootstrap asks every node's /leader; Prometheus scrapes /metrics"),
    exporter('postgresExporter', 'Prometheus scrapes postgres_exporter (a pg_monitor role, read only)'),
  ],
  haproxy: [
    // Every Airflow host, Airflow 3's workers too: they write each task's Celery state into
    // `[celery] result_backend`, the metadata database (the provider: "When a job finishes, it needs
    // to update the metadata of the job ... The use of a database is highly recommended",
    // https://airflow.apache.org/docs/apache-airflow-providers-celery/stable/configurations-ref.html).
    setting('haproxyLeader', [...AIRFLOW, 'haproxy', 'postgresql', 'operator'], "Airflow's metadata database through the VIP; status checks the write path from the HAProxy and scheduler hosts; psql on the PostgreSQL hosts (which reach PostgreSQL directly anyway) checks it by hand; the operator's PostgreSQL endpoint"),
    setting('haproxyReplica', ['airflow-metadata', 'haproxy', 'postgresql', 'operator'], "read-only queries through the VIP; psql on the PostgreSQL hosts; the operator's PostgreSQL endpoint"),
    setting('haproxyStats', ['haproxy', 'operator'], "HAProxy's stats page: the operator (endpoints); status reads it on each HAProxy host itself"),
    setting('webserverFrontend', ['network', 'operator'], 'the Airflow UI through the VIP, for its users (and workers reaching the API server on Airflow 3); with cluster.tls only a redirect to HTTPS'),
    { ...setting('webserverFrontendTls', ['network', 'operator'], 'the Airflow UI over HTTPS through the VIP (cluster.tls), for its users and the workers reaching the Execution API on Airflow 3'), tls: true },
    setting('flowerFrontend', ['haproxy', 'operator'], 'Flower through the VIP, for the operator'),
    exporter('haproxyMetrics', "Prometheus scrapes HAProxy's built-in exporter on a frontend of its own"),
  ],
  rabbitmq: [
    { ...setting('rabbitmqAmqp', [...AIRFLOW, 'rabbitmq'], 'the Celery broker without cluster.tls: the scheduler sends tasks, workers and Flower consume'), tls: false },
    { ...setting('rabbitmqAmqps', [...AIRFLOW, 'rabbitmq'], 'the Celery broker over TLS (cluster.tls): the scheduler sends tasks, workers and Flower consume; plaintext AMQP is closed'), tls: true },
    { ...setting('rabbitmqManagement', ['rabbitmq', 'operator'], "RabbitMQ's management API and UI without cluster.tls: the operator (endpoints); airflow-ha's checks ask each node's own API on 127.0.0.1"), tls: false },
    { ...setting('rabbitmqManagementTls', ['rabbitmq', 'operator'], "the management API and UI over HTTPS (cluster.tls): the operator (endpoints); the HTTP listener stays on 127.0.0.1 only, for airflow-ha's checks on the node itself"), tls: true },
    setting('rabbitmqDist', ['rabbitmq'], 'Erlang distribution between the RabbitMQ nodes (clustering)'),
    setting('epmd', ['rabbitmq'], 'epmd: the RabbitMQ nodes find each other\'s distribution port'),
    fixed('stream replication range', 6000, 6500, ['rabbitmq'], 'stream replication between the RabbitMQ nodes'),
    { label: 'CLI tools distribution range', range: (p) => [p.rabbitmqDist + 10000, p.rabbitmqDist + 10010], clients: ['rabbitmq'], why: 'rabbitmqctl and rabbitmq-diagnostics run as Erlang nodes on the RabbitMQ hosts' },
    exporter('rabbitmqPrometheus', 'Prometheus scrapes the rabbitmq_prometheus plugin'),
  ],
  // Scheduler hosts run the triggerer when no host has the role triggerer (src/components/airflow.ts).
  scheduler: [setting('triggererLogs', ['webserver'], "the webservers fetch deferred tasks' logs from the triggerer's log server")],
  webserver: [setting('webserver', ['haproxy'], 'HAProxy forwards the UI to the webservers and checks them')],
  triggerer: [setting('triggererLogs', ['webserver'], "the webservers fetch deferred tasks' logs from the triggerer's log server")],
  dag_processor: [],
  worker: [setting('workerLogs', ['webserver'], "the webservers fetch running tasks' logs from the worker's log server")],
  flower: [setting('flower', ['haproxy', 'monitoring'], "HAProxy forwards Flower and checks it; Prometheus scrapes Flower's /metrics (with Flower's basic auth)")],
  nfs: [
    fixed('nfsd', 2049, 2049, [...AIRFLOW, 'nfs'], 'the Airflow hosts mount the DAG folder from the nfs VIP; status checks the VIP from the nfs hosts'),
    fixed('rpcbind', 111, 111, [...AIRFLOW, 'nfs'], 'rpcbind, asked by NFS clients that probe older versions'),
    setting('rsync', ['nfs'], "the standby nfs host pulls the VIP holder's copy"),
  ],
  ftp: [
    fixed('ftp control', 21, 21, ['network', 'operator'], 'FTP over TLS for the cluster network and the operator'),
    { label: 'ftp passive range', setting: 'ftpPassiveMin', range: (p) => [p.ftpPassiveMin, Math.max(p.ftpPassiveMin, p.ftpPassiveMax)], clients: ['network', 'operator'], why: "FTP's passive data connections" },
  ],
  target: [],
  // pgBackRest reaches the PostgreSQL hosts and they reach it over SSH (sshd's port, open to the cluster network).
  backup: [],
  monitoring: [
    setting('prometheus', ['monitoring', 'operator'], "Prometheus's API and UI: the operator; status asks each monitoring host's own; two Prometheus servers see each other"),
    setting('alertmanager', ['monitoring', 'operator'], "Alertmanager's API and UI: each Prometheus sends its alerts to every Alertmanager; the operator silences"),
    { ...setting('alertmanagerCluster', ['monitoring'], 'gossip between two Alertmanagers, so each notification is sent once (TCP and UDP)'), udp: true },
  ],
};

/**
 * The ports every host listens on whatever its roles, in a {@link monitored} inventory:
 * node_exporter (which also carries keepalived's VIP state from its textfile collector).
 */
export const HOST_PORTS: readonly PortSpec[] = [
  exporter('nodeExporter', "Prometheus scrapes node_exporter (CPU, memory, disks, clock, systemd units, and keepalived's VIP state from its textfile collector)"),
];

/** A port (range) one host listens on, and why. */
export interface PortClaim {
  /** `host`: a port of every host ({@link HOST_PORTS}). */
  role: Role | 'ssh' | 'host';
  label: string;
  setting?: keyof Ports;
  from: number;
  to: number;
}

/** The SSH port of `host` as airflow-ha reaches it: hosts[].ssh.port, else ssh.port, else 22. */
export function hostSshPort(host: Host, inv: Inventory): number {
  return host.ssh?.port ?? inv.ssh.port ?? 22;
}

/** Every port a host listens on: sshd, the ports of every host, then its roles' ports in the order of its `roles` (exporters only when {@link monitored}). */
export function hostPortClaims(host: Host, inv: Inventory): PortClaim[] {
  const sshPort = hostSshPort(host, inv);
  const out: PortClaim[] = [{ role: 'ssh', label: 'sshd', from: sshPort, to: sshPort }];
  for (const spec of activeSpecs(inv, HOST_PORTS)) {
    const [from, to] = spec.range(inv.cluster.ports);
    out.push({ role: 'host', label: spec.label, ...(spec.setting ? { setting: spec.setting } : {}), from, to });
  }
  for (const role of new Set(host.roles)) {
    for (const spec of activeSpecs(inv, ROLE_PORTS[role])) {
      const [from, to] = spec.range(inv.cluster.ports);
      out.push({ role, label: spec.label, ...(spec.setting ? { setting: spec.setting } : {}), from, to });
    }
  }
  return out;
}

/**
 * The operator's machines: `cluster.firewall.operators` (addresses or CIDRs, as written) and, in a
 * lab, `lab.address` (the bridge of the machine that runs the lab and airflow-ha).
 */
export function operatorSources(inv: Inventory): string[] {
  return [...(inv.cluster.firewall?.operators ?? []), ...(inv.lab ? [inv.lab.address] : [])];
}

/**
 * The source addresses of `clients`, as nft/firewalld source elements (`10.0.0.5`, `10.0.0.0/24`),
 * without duplicates and without an element that another one of the list contains (nftables refuses
 * overlapping intervals in one set). Empty when no host plays those roles.
 */
export function clientSources(inv: Inventory, clients: readonly PortClient[]): string[] {
  const out: string[] = [];
  for (const c of clients) {
    if (c === 'network') out.push(inv.cluster.network);
    else if (c === 'operator') out.push(...operatorSources(inv));
    else if (c === 'dag-processor') {
      const role: Role = inv.hosts.some((h) => h.roles.includes('dag_processor')) ? 'dag_processor' : 'scheduler';
      out.push(...inv.hosts.filter((h) => h.roles.includes(role)).map((h) => h.address));
    } else if (c === 'airflow-metadata') {
      out.push(...metadataClients(inv).map((h) => h.address));
    } else {
      out.push(...inv.hosts.filter((h) => h.roles.includes(c)).map((h) => h.address));
      out.push(...inv.cluster.vips.filter((v) => v.role === c).map((v) => v.address));
    }
  }
  return minimalSources(out);
}

/** The range [lo, hi] of an address or CIDR (canonical: host bits cleared), or undefined if it is neither. */
function span(text: string): { text: string; lo: number; hi: number } | undefined {
  if (text.includes('/')) {
    const net = parseCidr(text);
    return net && { text: net.prefix === 32 ? formatIpv4(net.network) : canonicalCidr(net), lo: net.network, hi: net.broadcast };
  }
  const a = parseIpv4(text);
  return a === undefined ? undefined : { text, lo: a, hi: a };
}

/** Sources without duplicates or elements inside another element, in first-seen order. */
function minimalSources(list: readonly string[]): string[] {
  const spans = list.map((t) => span(t) ?? { text: t, lo: NaN, hi: NaN });
  const kept = spans.filter((s, i) => !spans.some((o, j) => j !== i && o.lo <= s.lo && s.hi <= o.hi && (o.lo !== s.lo || o.hi !== s.hi || j < i)));
  return kept.map((s) => s.text);
}

/**
 * Who may reach sshd: anywhere by default; with `cluster.firewall.ssh`, those sources plus the
 * operator's machines and the cluster network (jump hosts, workers to the SSH targets, status'
 * target check). `undefined` means from anywhere.
 */
export function sshClients(inv: Inventory): string[] | undefined {
  const allowed = inv.cluster.firewall?.ssh;
  if (!allowed) return undefined;
  return minimalSources([...allowed, ...operatorSources(inv), inv.cluster.network]);
}

/**
 * The addresses `host` accepts VRRP adverts (IP protocol 112, RFC 5798) from: the other hosts of the
 * roles of the VIPs it shares (keepalived's unicast peers). Empty on a host that holds no VIP.
 */
export function vrrpPeers(host: Host, inv: Inventory): string[] {
  const roles = new Set(inv.cluster.vips.filter((v) => host.roles.includes(v.role)).map((v) => v.role));
  return [...new Set(inv.hosts.filter((h) => h.name !== host.name && h.roles.some((r) => roles.has(r))).map((h) => h.address))];
}

/** True when the address or network `source` lies wholly inside the network `cidr`. */
export function sourceWithin(source: string, cidr: string): boolean {
  const s = span(source);
  const n = span(cidr);
  return s !== undefined && n !== undefined && n.lo <= s.lo && s.hi <= n.hi;
}
