/**
 * The cluster's TLS plan (inventory `cluster.tls`): which names each host's certificate must carry,
 * where the CA, certificate and keys live on the hosts, and which client files each service uses.
 * Pure: the certificates themselves are made on the operator's machine (src/cli/tls.ts) and shipped
 * by the tasks of src/components/tls.ts.
 *
 * Why the key is made on the operator's machine and uploaded (0600), not made on the host with a CSR
 * signed here: a plan is computed from facts before anything runs, and a CSR flow would need a round
 * trip in the middle of the apply (read the host's CSR, sign, upload) that `plan` could not show.
 * Made here, every key and certificate is a fixed file of the desired state, like the secrets the
 * state folder already holds: `plan` shows what would change, and a re-run uploads nothing.
 */
import type { TlsClientFiles } from '../tasks/https.js';
import type { Host, Inventory } from '../inventory/schema.js';

/** The folder of every TLS file on a host (root:root 0755; keys inside are 0600). */
export const TLS_DIR = '/etc/airflow-ha/tls';
/** The cluster CA's certificate on every host (0644). */
export const CA_CERT = `${TLS_DIR}/ca.crt`;
/** This host's certificate (0644). */
export const HOST_CERT = `${TLS_DIR}/host.crt`;
/** This host's private key, root-only (0600): what root's own clients (etcdctl, status probes) present. */
export const HOST_KEY = `${TLS_DIR}/host.key`;

/**
 * HAProxy's certificate file (root, 0600): the host certificate followed by its key, the one-file
 * PEM form of `bind ... ssl crt` (https://docs.haproxy.org/2.6/configuration.html#5.1-crt). HAProxy
 * reads it as root at start and on reload, before it drops privileges.
 */
export const HAPROXY_PEM = `${TLS_DIR}/haproxy.pem`;

/**
 * The Airflow UI servers' certificate chain on every Airflow host (0644): the host certificate, then
 * the CA's. It is `[api] ssl_cert` on Airflow 3, which is two things at once: the api-server serves it
 * (with `[api] ssl_key`; both set turns HTTPS on, one alone is refused: Airflow's
 * `api_server_command.py`, `_get_ssl_cert_and_key_filepaths`), and the Task SDK's Execution API
 * client adds it to its trusted certificates (`load_verify_locations`, task-sdk
 * `airflow/sdk/api/client.py`, `Client._get_ssl_context_cached`), so the CA in it lets the workers
 * verify the VIP; `[webserver] web_server_ssl_cert` on Airflow 2
 * (https://airflow.apache.org/docs/apache-airflow/3.1.3/configurations-ref.html#ssl-cert,
 * https://airflow.apache.org/docs/apache-airflow/2.9.0/configurations-ref.html#web-server-ssl-cert).
 */
export const AIRFLOW_TLS_CHAIN = `${TLS_DIR}/airflow-chain.crt`;

/**
 * The services that read the host's key as their own user, each with its own copy (owner that
 * user, 0600): PostgreSQL refuses a key readable by group or others unless root owns it
 * (https://www.postgresql.org/docs/15/ssl-tcp.html, "the file must not allow any access to world or
 * group"), etcd runs as `etcd`, RabbitMQ as `rabbitmq` (its AMQPS listener), and the Airflow
 * services as the Airflow user (the DAG processors' `etcdctl lock`, Celery's client certificate).
 */
export type KeyService = 'etcd' | 'postgres' | 'rabbitmq' | 'airflow';

/**
 * Where `service`'s copy of the host key lives and whose it is (`path`, owner, group), and its copy
 * of the host certificate beside it (`cert`, `<service>.crt`, 0644). A service reads its own pair,
 * never `host.crt` with its own key: both are written one after the other in the service's step, so
 * a new key and certificate (`certs rotate`) reach a service together, and a step that runs before
 * the service's own (the `tls files` step writes `host.crt`) never leaves it a certificate that
 * does not match its key.
 */
export function serviceKey(inv: Inventory, service: KeyService): { path: string; cert: string; owner: string; group: string } {
  const user = service === 'airflow' ? inv.cluster.airflow.user : service;
  return { path: `${TLS_DIR}/${service}.key`, cert: `${TLS_DIR}/${service}.crt`, owner: user, group: user };
}

/** `service`'s own certificate and key ({@link serviceKey}) and the CA, as its configs name them. */
export function serviceTlsFiles(inv: Inventory, service: KeyService): { ca: string; cert: string; key: string } {
  const k = serviceKey(inv, service);
  return { ca: CA_CERT, cert: k.cert, key: k.path };
}

/** Whether the inventory turns TLS on. */
export function tlsEnabled(inv: Inventory): boolean {
  return inv.cluster.tls.enabled;
}

/** The subjectAltNames of one host's certificate: DNS names and IPv4 addresses, each once, in a fixed order. */
export interface HostSans {
  dns: string[];
  ip: string[];
}

/**
 * What `host`'s certificate must name (README "TLS"):
 * - its inventory name and its address, and `localhost`/127.0.0.1 (etcd and PostgreSQL listen there too);
 * - every VIP of a role it has (keepalived may move the VIP to it);
 * - on a PostgreSQL host, every haproxy VIP (name and address), or the haproxy hosts' addresses
 *   when there is no haproxy VIP: HAProxy passes PostgreSQL's TCP through, so a client that checks
 *   the name (`sslmode=verify-full`) sees the PostgreSQL host's certificate at the VIP.
 */
export function hostSans(inv: Inventory, host: Host): HostSans {
  const dns = [host.name, 'localhost'];
  const ip = [host.address, '127.0.0.1'];
  const haproxyVips = inv.cluster.vips.filter((v) => v.role === 'haproxy');
  for (const v of inv.cluster.vips) {
    if (host.roles.includes(v.role) || (host.roles.includes('postgresql') && v.role === 'haproxy')) {
      dns.push(v.name);
      ip.push(v.address);
    }
  }
  if (host.roles.includes('postgresql') && haproxyVips.length === 0) {
    for (const h of inv.hosts.filter((x) => x.roles.includes('haproxy'))) {
      dns.push(h.name);
      ip.push(h.address);
    }
  }
  return { dns: [...new Set(dns)], ip: [...new Set(ip)] };
}

/** `DNS:a,DNS:b,IP:10.0.0.1` (openssl x509v3_config(5) "Subject Alternative Name"). */
export function sanExtension(s: HostSans): string {
  return [...s.dns.map((d) => `DNS:${d}`), ...s.ip.map((i) => `IP:${i}`)].join(',');
}

/**
 * The SANs of a certificate as Node prints them (`X509Certificate.subjectAltName`:
 * `DNS:a, IP Address:10.0.0.1`), as {@link HostSans} sorted, to compare with the plan.
 */
export function parseSubjectAltName(text: string | undefined): HostSans {
  const dns: string[] = [];
  const ip: string[] = [];
  for (const part of (text ?? '').split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (m?.[1] === 'DNS') dns.push(m[2] as string);
    else if (m?.[1] === 'IP Address') ip.push(m[2] as string);
  }
  return { dns: dns.sort(), ip: ip.sort() };
}

/** Whether two SAN sets hold the same names (order does not matter). */
export function sameSans(a: HostSans, b: HostSans): boolean {
  const norm = (s: HostSans) => JSON.stringify([[...s.dns].sort(), [...s.ip].sort()]);
  return norm(a) === norm(b);
}

/** What root's clients on a host present (etcdctl, the status probes, the bootstrap's facts and gates): the CA, the host certificate and root's key. */
export const ROOT_CLIENT = { ca: CA_CERT, cert: HOST_CERT, key: HOST_KEY } as const satisfies TlsClientFiles;

/** `http` or `https` for the data plane's own endpoints (etcd, Patroni's REST API). */
export function scheme(inv: Inventory): 'http' | 'https' {
  return tlsEnabled(inv) ? 'https' : 'http';
}

/** Days before a certificate's end from which `status` reports it degraded. */
export const CERT_WARN_DAYS = 30;
