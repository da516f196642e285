/**
 * `airflow-ha endpoints`: where an operator reaches the cluster from the machine that runs
 * airflow-ha — the Airflow UI, Flower and HAProxy's stats through the VIP, the PostgreSQL ports
 * behind it, RabbitMQ's management UI, each monitoring host's Prometheus and Alertmanager — with each login's user and the name of the secret that
 * holds its password in the state folder's secrets file, and from which addresses the firewall lets
 * them be reached (src/inventory/ports.ts). Offline and pure: nothing connects, and no password is
 * ever printed.
 */
import path from 'node:path';
import { AIRFLOW_ADMIN_USER, FLOWER_USER, webserverFrontendUrl } from '../components/airflow.js';
import { HAPROXY_STATS_USER } from '../components/haproxy.js';
import { AIRFLOW_DB_USER } from '../components/patroni.js';
import { ADMIN_USER as RABBITMQ_ADMIN_USER } from '../components/rabbitmq.js';
import type { LoadedInventory } from '../inventory/load.js';
import { operatorSources, sourceWithin } from '../inventory/ports.js';
import { SECRETS_FILE, SECRETS_FILE_AGE, type ClusterSecrets } from '../inventory/secrets.js';
import { scheme, tlsEnabled } from '../tls/plan.js';

/** One place to reach: what it is, its URL or address, and its login (user and secret name) if any. */
export interface Endpoint {
  name: string;
  url: string;
  user?: string;
  /** The key in `<stateDir>/secrets.yaml` that holds the password. */
  secret?: keyof ClusterSecrets;
}

/**
 * The endpoints of `loaded`'s cluster, in the order an operator looks for them; components without
 * hosts are left out. The front address is the haproxy VIP, or the first HAProxy host without one.
 */
export function clusterEndpoints(loaded: LoadedInventory): Endpoint[] {
  const inv = loaded.inventory;
  const p = inv.cluster.ports;
  const has = (role: string) => inv.hosts.some((h) => h.roles.includes(role as never));
  const front = inv.cluster.vips.find((v) => v.role === 'haproxy')?.address ?? inv.hosts.find((h) => h.roles.includes('haproxy'))?.address;
  const mq = inv.hosts.find((h) => h.roles.includes('rabbitmq'));
  const list: Endpoint[] = [];
  if (front) {
    // With cluster.tls HAProxy serves the UI, Flower and its stats page over HTTPS.
    const web = scheme(inv);
    // The UI's URL as airflow.cfg's base_url has it, by address.
    if (has('webserver')) list.push({ name: 'Airflow UI', url: `${webserverFrontendUrl(inv, true)}/`, user: AIRFLOW_ADMIN_USER, secret: 'airflowAdmin' });
    if (has('flower')) list.push({ name: 'Flower', url: `${web}://${front}:${p.flowerFrontend}/`, user: FLOWER_USER, secret: 'flowerBasicAuth' });
    list.push({ name: 'HAProxy stats', url: `${web}://${front}:${p.haproxyStats}/`, user: HAPROXY_STATS_USER, secret: 'haproxyStats' });
    list.push({ name: 'PostgreSQL primary (read-write)', url: `${front}:${p.haproxyLeader}`, user: AIRFLOW_DB_USER, secret: 'airflowDb' });
    list.push({ name: 'PostgreSQL replicas (read-only)', url: `${front}:${p.haproxyReplica}`, user: AIRFLOW_DB_USER, secret: 'airflowDb' });
  }
  // With cluster.tls the management UI serves the network over HTTPS only (its HTTP listener is on 127.0.0.1).
  if (mq) list.push({ name: 'RabbitMQ management', url: tlsEnabled(inv) ? `https://${mq.address}:${p.rabbitmqManagementTls}/` : `http://${mq.address}:${p.rabbitmqManagement}/`, user: RABBITMQ_ADMIN_USER, secret: 'rabbitmqAdmin' });
  // Prometheus and Alertmanager of each monitoring host (no login: the firewall admits the operator machines only).
  for (const h of inv.hosts.filter((x) => x.roles.includes('monitoring'))) {
    list.push({ name: `Prometheus (${h.name})`, url: `http://${h.address}:${p.prometheus}/` });
    list.push({ name: `Alertmanager (${h.name})`, url: `http://${h.address}:${p.alertmanager}/` });
  }
  return list;
}

/**
 * Which machines the firewall lets reach the endpoints: the Airflow UI answers the cluster network
 * and the operator's machines; the others answer the operator's machines only (and the cluster hosts
 * that use them). One line, for the end of {@link endpointsText}.
 */
export function endpointsFirewallNote(loaded: LoadedInventory): string {
  const ops = operatorSources(loaded.inventory);
  const network = loaded.inventory.cluster.network;
  const where = [network, ...ops.filter((o) => !sourceWithin(o, network))].join(', ');
  return ops.length
    ? `firewall: the UI answers ${where}; the other endpoints answer only ${ops.join(', ')} (cluster.firewall.operators${loaded.inventory.lab ? ', lab.address' : ''})`
    : `firewall: the UI answers ${where}; the other endpoints answer no operator machine until its address is in cluster.firewall.operators`;
}

/** Where the secret `name` is kept: `env VAR`, `command` (its argv is not shown) or undefined for the secrets file. */
export function secretSourceLabel(loaded: LoadedInventory, name: keyof ClusterSecrets): string | undefined {
  const src = loaded.inventory.secrets?.[name];
  if (!src) return undefined;
  return src.env !== undefined ? `env ${src.env}` : 'command';
}

/** The endpoints as aligned text lines, the firewall's note, then where the passwords are kept. */
export function endpointsText(loaded: LoadedInventory): string {
  const list = clusterEndpoints(loaded);
  const w = Math.max(...list.map((e) => e.name.length));
  const u = Math.max(...list.map((e) => e.url.length));
  const from = (e: Endpoint) => (e.secret && secretSourceLabel(loaded, e.secret) ? ` (from ${secretSourceLabel(loaded, e.secret)})` : '');
  const lines = list.map((e) => `${e.name.padEnd(w)}  ${e.url.padEnd(u)}${e.user ? `  login ${e.user}, password: secret ${e.secret}${from(e)}` : ''}`.trimEnd());
  const age = loaded.inventory.secretsFile.encryption === 'age';
  const file = path.join(loaded.stateDir, age ? SECRETS_FILE_AGE : SECRETS_FILE);
  return `${lines.join('\n')}\n${endpointsFirewallNote(loaded)}\npasswords: ${file} (mode 0600${age ? ', age-encrypted' : ''}; airflow-ha never prints them)${loaded.inventory.secrets ? ', except those marked "from"' : ''}\n`;
}
