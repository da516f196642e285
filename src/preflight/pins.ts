/**
 * What the run pins on a host: the packages whose version comes from `cluster.versions`, per OS
 * family, with the upstream repository that carries them under `packages.kind: upstream` (README
 * "Package sources"). Built from the components' own pin functions, so the preflight checks
 * exactly what the package tasks will install.
 */
import { etcdPins } from '../components/etcd.js';
import { patroniPaths, patroniPins } from '../components/patroni.js';
import { rabbitmqPackages } from '../components/rabbitmq.js';
import { sourceBase } from '../components/repos.js';
import type { OsFamily } from '../facts/host.js';
import type { Inventory, MirrorKey, Role } from '../inventory/schema.js';

/** One pinned package. */
export interface Pin {
  name: string;
  /** The version prefix it must have; undefined when only the name carries the version (`postgresql-15`). */
  version?: string;
  /** The `cluster.versions` key the pin comes from. */
  setting: 'postgresql' | 'patroni' | 'etcd' | 'rabbitmq' | 'erlang';
  /** Base URL of the upstream repository that carries it (kind upstream), undefined for the OS's own. */
  source?: string;
}

/**
 * The pins of the run's `roles` on a host of `family`. Sources: etcd on RHEL and PostgreSQL,
 * Patroni everywhere from PGDG; Erlang and RabbitMQ from Team RabbitMQ's; Debian's etcd is
 * Debian's own (src/components/etcd.ts).
 */
export function hostPins(inv: Inventory, roles: readonly Role[], family: OsFamily): Pin[] {
  const upstream = (key: MirrorKey) => (inv.cluster.packages.kind === 'upstream' ? { source: sourceBase(inv, key, family) } : {});
  const out: Pin[] = [];
  if (roles.includes('etcd')) {
    for (const [name, version] of Object.entries(etcdPins(inv, family))) {
      out.push({ name, version, setting: 'etcd', ...(family === 'rhel' ? upstream('pgdg') : {}) });
    }
  }
  if (roles.includes('postgresql')) {
    const server = patroniPaths(family, inv.cluster.versions.postgresql).packages[0];
    if (server) out.push({ name: server, setting: 'postgresql', ...upstream('pgdg') });
    for (const [name, version] of Object.entries(patroniPins(inv, family))) out.push({ name, version, setting: 'patroni', ...upstream('pgdg') });
  }
  if (roles.includes('rabbitmq')) {
    for (const [name, version] of Object.entries(rabbitmqPackages(inv, family).versions ?? {})) {
      const server = name === 'rabbitmq-server';
      out.push({ name, version, setting: server ? 'rabbitmq' : 'erlang', ...upstream(server ? 'rabbitmq-server' : 'rabbitmq-erlang') });
    }
  }
  return out;
}
