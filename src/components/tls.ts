/**
 * The TLS files on each host (`cluster.tls`, README "TLS"): the cluster CA's certificate, the host's
 * certificate and root's copy of its key in /etc/airflow-ha/tls, and, once the packages that create
 * their users are installed, a copy of the key for each service that reads it as its own user (see
 * serviceKey in src/tls/plan.ts). The files come from the operator's machine (src/cli/tls.ts) as
 * data: nothing here makes a key.
 */
import type { Host, Inventory } from '../inventory/schema.js';
import type { TlsMaterial } from '../run/playbook.js';
import { directory, file } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import type { Handler, Task } from '../tasks/task.js';
import { AIRFLOW_TLS_CHAIN, CA_CERT, HAPROXY_PEM, HOST_CERT, HOST_KEY, serviceKey, TLS_DIR, tlsEnabled, type KeyService } from '../tls/plan.js';

/** `host`'s files from `material`. @throws Error when TLS is on and the material lacks the host (a render without the operator's inputs). */
function hostFiles(inv: Inventory, host: Host, material: TlsMaterial | undefined): { cert: string; key: TlsMaterial['hosts'][string]['key']; ca: string } {
  const own = material?.hosts[host.name];
  if (!material || !own) throw new Error(`cluster.tls is on but no certificate for ${host.name} was made on this machine (the run's operator inputs lack it)`);
  return { cert: own.cert, key: own.key, ca: material.caCert };
}

/**
 * Tasks of every host when TLS is on (none otherwise): openssl (status reads the certificate's end
 * date with `openssl x509 -enddate`), the folder, the CA certificate and the host certificate
 * (0644), root's key (0600, its diff hidden). `notify` fires when the certificate or key changes.
 */
export function tlsHostTasks(inv: Inventory, host: Host, material: TlsMaterial | undefined, notify: Handler[] = []): Task[] {
  if (!tlsEnabled(inv)) return [];
  const f = hostFiles(inv, host, material);
  return [
    packages({ names: ['openssl'] }),
    directory({ path: TLS_DIR, mode: '0755', owner: 'root', group: 'root' }),
    file({ path: CA_CERT, content: f.ca, mode: '0644', notify }),
    file({ path: HOST_CERT, content: f.cert, mode: '0644', notify }),
    file({ path: HOST_KEY, content: f.key.reveal(), mode: '0600', holdsSecrets: true, label: `private key ${HOST_KEY}`, notify }),
  ];
}

/**
 * Tasks: `service`'s own copy of the host certificate (0644) and of the host key (owner the
 * service's user, 0600), one after the other, for after the package that creates the user; none
 * when TLS is off. `notify` fires when either changes.
 */
export function tlsServiceKeyTask(inv: Inventory, host: Host, material: TlsMaterial | undefined, service: KeyService, notify: Handler[] = []): Task[] {
  if (!tlsEnabled(inv)) return [];
  const k = serviceKey(inv, service);
  const f = hostFiles(inv, host, material);
  return [
    file({ path: k.cert, content: f.cert, mode: '0644', owner: 'root', group: 'root', notify }),
    file({ path: k.path, content: f.key.reveal(), mode: '0600', owner: k.owner, group: k.group, holdsSecrets: true, label: `private key ${k.path}`, notify }),
  ];
}

/**
 * Task: HAProxy's certificate file ({@link HAPROXY_PEM}: the host certificate, then its key; root,
 * 0600, its diff hidden), for the HTTPS frontends of Flower and the stats page; none when TLS is
 * off. `notify` fires when it changes (a reload re-reads it).
 */
export function tlsHaproxyPemTask(inv: Inventory, host: Host, material: TlsMaterial | undefined, notify: Handler[] = []): Task[] {
  if (!tlsEnabled(inv)) return [];
  const f = hostFiles(inv, host, material);
  const pem = `${f.cert.trimEnd()}\n${f.key.reveal().trimEnd()}\n`;
  return [file({ path: HAPROXY_PEM, content: pem, mode: '0600', owner: 'root', group: 'root', holdsSecrets: true, label: `certificate and private key ${HAPROXY_PEM}`, notify })];
}

/**
 * Task: the Airflow UI's certificate chain ({@link AIRFLOW_TLS_CHAIN}: the host certificate, then the
 * CA's; 0644, no secret in it) on an Airflow host; none when TLS is off. `notify` fires when it
 * changes (the api-server reads it when it starts).
 */
export function tlsAirflowChainTask(inv: Inventory, host: Host, material: TlsMaterial | undefined, notify: Handler[] = []): Task[] {
  if (!tlsEnabled(inv)) return [];
  const f = hostFiles(inv, host, material);
  return [file({ path: AIRFLOW_TLS_CHAIN, content: `${f.cert.trimEnd()}\n${f.ca.trimEnd()}\n`, mode: '0644', owner: 'root', group: 'root', label: `certificate chain ${AIRFLOW_TLS_CHAIN}`, notify })];
}
