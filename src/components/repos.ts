/**
 * Package sources (`cluster.packages`). `distro`: the repositories already configured on the host
 * (Debian 12's archive in the lab; on Rocky/RHEL whatever the site provides, e.g. a Satellite
 * mirror of PGDG): nothing is added. `upstream`: the projects' own repositories, added before the
 * component's packages: PGDG for PostgreSQL, Patroni (and etcd on RHEL, from PGDG's extras
 * repository), Team RabbitMQ's for Erlang and RabbitMQ. `cluster.packages.mirrors` replaces an
 * upstream base URL (repositories and their signing keys) for sites without internet access.
 *
 * Sources: PGDG's pgdg-redhat-all.repo for RHEL 9 (package pgdg-redhat-repo) and
 * https://wiki.postgresql.org/wiki/Apt; https://www.rabbitmq.com/docs/install-rpm and
 * https://www.rabbitmq.com/docs/install-debian; sources.list(5) (deb822 `.sources`, `Signed-By`
 * with an ASCII-armored `.asc` key); dnf.conf(5) (`gpgkey` URLs are imported by `dnf -y`).
 */
import { sh, type Cmd } from '../core/cmd.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import type { Inventory, MirrorKey } from '../inventory/schema.js';
import { command } from '../tasks/command.js';
import { file } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import type { Task } from '../tasks/task.js';
import { renderTemplate, template } from '../tasks/template.js';

/**
 * The upstream base URLs `cluster.packages.mirrors` may replace, per key and OS family. A mirror
 * must keep the layout below its base (the paths the repositories and keys are read from).
 */
export const UPSTREAM_BASES: Readonly<Record<MirrorKey, Readonly<Record<OsFamily, string>>>> = {
  /** PGDG. RHEL: `<base>/<major>/redhat/rhel-9-$basearch`, `<base>/common/...`, key `<base>/keys/PGDG-RPM-GPG-KEY-RHEL`.
   *  Debian: `<base>` suite `bookworm-pgdg`, key `<base>/ACCC4CF8.asc`. */
  pgdg: { rhel: 'https://download.postgresql.org/pub/repos/yum', debian: 'https://apt.postgresql.org/pub/repos/apt' },
  /** Team RabbitMQ's Erlang. RHEL: `<base>/el/9/$basearch` and `/noarch`. Debian: `<base>/debian/bookworm` suite `bookworm`. */
  'rabbitmq-erlang': { rhel: 'https://yum1.novemberain.com/erlang', debian: 'https://deb1.rabbitmq.com/rabbitmq-erlang' },
  /** Team RabbitMQ's RabbitMQ server, same layout as rabbitmq-erlang. */
  'rabbitmq-server': { rhel: 'https://yum1.novemberain.com/rabbitmq', debian: 'https://deb1.rabbitmq.com/rabbitmq-server' },
  /** Team RabbitMQ's signing keys (the same files for both families). */
  'rabbitmq-keys': {
    rhel: 'https://github.com/rabbitmq/signing-keys/releases/download/3.0',
    debian: 'https://github.com/rabbitmq/signing-keys/releases/download/3.0',
  },
};

/** The base URL of `key` for `family`: the inventory's mirror (trailing `/` dropped) or the upstream one. */
export function sourceBase(inv: Inventory, key: MirrorKey, family: OsFamily): string {
  const mirror = inv.cluster.packages.mirrors?.[key];
  return mirror ? mirror.replace(/\/+$/, '') : UPSTREAM_BASES[key][family];
}

/** The OS release a repository path names: RHEL's major version (`9`), Debian's code name (`bookworm`). */
export function osRelease(facts: Pick<HostFacts, 'family' | 'osVersion'>): string {
  const major = facts.osVersion.split('.')[0] ?? '';
  if (facts.family === 'rhel') return major;
  const codename: Record<string, string> = { '12': 'bookworm' };
  const name = codename[major];
  if (!name) throw new Error(`Debian ${facts.osVersion} is not supported for upstream package sources (Debian 12 is)`);
  return name;
}

/** Where airflow-ha keeps the apt signing keys it fetched (apt reads `.asc` keys in Signed-By). */
export const APT_KEYRING_DIR = '/etc/apt/keyrings';

/**
 * One Debian repository: a deb822 `.sources` file, its signing key fetched once (atomically, over
 * HTTPS or the mirror's URL, through `cluster.packages.proxy` when set), and `apt-get update` until
 * apt's cache lists the repository (`apt-cache policy` shows a source only once its index was
 * downloaded), so an interrupted run is completed by the next one.
 */
function aptSourceTasks(
  inv: Inventory,
  spec: { id: string; what: string; source: string; uri: string; suite: string; keyId: string; keyUrl: string; arch?: string },
): Task[] {
  const keyring = `${APT_KEYRING_DIR}/airflow-ha-${spec.keyId}.asc`;
  const path = `/etc/apt/sources.list.d/airflow-ha-${spec.id}.sources`;
  const proxy = inv.cluster.packages.proxy;
  const curl: Cmd = proxy ? sh`curl -fsSL --proxy ${proxy}` : sh`curl -fsSL`;
  return [
    packages({ names: ['curl', 'ca-certificates'] }),
    command({
      name: `signing key ${keyring}`,
      cmd: sh`mkdir -p ${APT_KEYRING_DIR} && ${curl} -o ${`${keyring}.tmp`} ${spec.keyUrl} && chmod 0644 ${`${keyring}.tmp`} && mv -f ${`${keyring}.tmp`} ${keyring}`,
      creates: keyring,
      timeoutSec: 120,
    }),
    template({
      path,
      template: 'repos/apt.sources.njk',
      vars: { cluster: inv.cluster.name, what: spec.what, source: spec.source, uri: spec.uri, suite: spec.suite, keyring, arch: spec.arch ?? '' },
    }),
    command({
      name: `apt index of ${spec.uri} ${spec.suite}`,
      cmd: sh`apt-get update -q`,
      unless: sh`apt-cache policy | grep -qF ${` ${spec.uri} ${spec.suite}/`}`,
      timeoutSec: 600,
    }),
  ];
}

/**
 * Tasks: the PGDG repositories on this host (kind `upstream`; none for `distro`). RHEL: one
 * `.repo` file (PostgreSQL `<major>`, common, extras) whose `gpgkey` dnf imports on first use,
 * and the RHEL AppStream `postgresql` module disabled (`dnf -qy module disable postgresql`, as
 * PGDG's install page says), so PGDG's packages are not filtered out. Debian: apt.postgresql.org.
 */
export function pgdgRepoTasks(inv: Inventory, facts: Pick<HostFacts, 'family' | 'osVersion'>): Task[] {
  if (inv.cluster.packages.kind !== 'upstream') return [];
  const base = sourceBase(inv, 'pgdg', facts.family);
  const release = osRelease(facts);
  if (facts.family === 'debian') {
    return aptSourceTasks(inv, {
      id: 'pgdg',
      what: 'PGDG, the PostgreSQL project\'s apt repository (PostgreSQL, Patroni)',
      source: 'https://wiki.postgresql.org/wiki/Apt',
      uri: base,
      suite: `${release}-pgdg`,
      keyId: 'pgdg',
      keyUrl: `${base}/ACCC4CF8.asc`,
    });
  }
  return [
    template({
      path: '/etc/yum.repos.d/airflow-ha-pgdg.repo',
      template: 'repos/pgdg.repo.njk',
      vars: {
        cluster: inv.cluster.name,
        major: inv.cluster.versions.postgresql,
        release,
        base,
        key: `${base}/keys/PGDG-RPM-GPG-KEY-RHEL`,
        proxy: inv.cluster.packages.proxy ?? '',
      },
    }),
    command({
      name: 'dnf module postgresql disabled',
      cmd: sh`dnf -qy module disable postgresql`,
      unless: sh`dnf -q module list --disabled postgresql 2>/dev/null | grep -q '^postgresql '`,
      timeoutSec: 300,
    }),
  ];
}

/** The `.repo` sections of Team RabbitMQ's repositories for RHEL `release`. */
export function rabbitmqRpmRepos(inv: Inventory, release: string): { id: string; baseurl: string; keys: string[] }[] {
  const erlang = sourceBase(inv, 'rabbitmq-erlang', 'rhel');
  const server = sourceBase(inv, 'rabbitmq-server', 'rhel');
  const keys = sourceBase(inv, 'rabbitmq-keys', 'rhel');
  const erlangKey = `${keys}/cloudsmith.rabbitmq-erlang.E495BB49CC4BBE5B.key`;
  const serverKey = `${keys}/cloudsmith.rabbitmq-server.9F4587F226208342.key`;
  const releaseKey = `${keys}/rabbitmq-release-signing-key.asc`;
  return [
    { id: 'airflow-ha-modern-erlang', baseurl: `${erlang}/el/${release}/$basearch`, keys: [erlangKey] },
    { id: 'airflow-ha-modern-erlang-noarch', baseurl: `${erlang}/el/${release}/noarch`, keys: [erlangKey, releaseKey] },
    { id: `airflow-ha-rabbitmq-el${release}`, baseurl: `${server}/el/${release}/$basearch`, keys: [serverKey, releaseKey] },
    { id: `airflow-ha-rabbitmq-el${release}-noarch`, baseurl: `${server}/el/${release}/noarch`, keys: [serverKey, releaseKey] },
  ];
}

/**
 * Tasks: Team RabbitMQ's repositories for Erlang and RabbitMQ on this host (kind `upstream`; none
 * for `distro`). RHEL: one `.repo` file. Debian: two apt sources signed by Team RabbitMQ's release
 * key (0x6B73A36E6026DFCA).
 */
export function rabbitmqRepoTasks(inv: Inventory, facts: Pick<HostFacts, 'family' | 'osVersion'>): Task[] {
  if (inv.cluster.packages.kind !== 'upstream') return [];
  const release = osRelease(facts);
  if (facts.family === 'rhel') {
    return [
      template({
        path: '/etc/yum.repos.d/airflow-ha-rabbitmq.repo',
        template: 'repos/rabbitmq.repo.njk',
        vars: { cluster: inv.cluster.name, release, repos: rabbitmqRpmRepos(inv, release), proxy: inv.cluster.packages.proxy ?? '' },
      }),
    ];
  }
  // Both repositories are signed by Team RabbitMQ's release key and carry amd64 packages only.
  const key = { keyId: 'rabbitmq', keyUrl: `${sourceBase(inv, 'rabbitmq-keys', 'debian')}/rabbitmq-release-signing-key.asc`, arch: 'amd64' };
  const sources = [
    ['rabbitmq-erlang', "Team RabbitMQ's Erlang"],
    ['rabbitmq-server', "Team RabbitMQ's RabbitMQ server"],
  ] as const;
  return sources.flatMap(([id, what]) =>
    aptSourceTasks(inv, {
      id,
      what,
      source: 'https://www.rabbitmq.com/docs/install-debian',
      uri: `${sourceBase(inv, id, 'debian')}/debian/${release}`,
      suite: release,
      ...key,
    }),
  );
}

/**
 * Debian: the version apt must pick for every `erlang*` package (RabbitMQ pulls a dozen of them),
 * as an apt preferences file (apt_preferences(5): `Pin-Priority` above 1000 holds the version even
 * against a newer one). Team RabbitMQ's and Debian's Erlang packages carry the epoch `1:`, added
 * when the inventory's version has none. Undefined on RHEL, where the one `erlang` package is pinned.
 */
export function erlangAptPin(inv: Inventory, family: OsFamily): Task | undefined {
  const v = inv.cluster.versions.erlang;
  if (family !== 'debian' || !v) return undefined;
  return file({
    path: '/etc/apt/preferences.d/airflow-ha-erlang',
    content: renderTemplate('repos/erlang.pref.njk', { cluster: inv.cluster.name, version: debianErlangVersion(v) }),
  });
}

/** `26.2.5` -> `1:26.2.5` (the epoch of Debian's and Team RabbitMQ's Erlang packages); kept if it has one. */
export function debianErlangVersion(v: string): string {
  return v.includes(':') ? v : `1:${v}`;
}
