/**
 * Semantic rules of an inventory that passed the schema: pure functions from the parsed inventory
 * (plus a way to locate a YAML path) to diagnostics. Each finding carries a stable rule id.
 * Errors are for layouts that cannot work; warnings for layouts that work but are fragile.
 *
 * Rule ids (besides `yaml:*`, `schema:*` and `pattern:*`, which load.ts produces; `pattern:<name>`
 * is a value that fails a named pattern of schema.ts, e.g. `pattern:version`):
 *
 * | id                       | severity      | what                                                                 |
 * |--------------------------|---------------|----------------------------------------------------------------------|
 * | `network:host-bits`      | warning       | `cluster.network` has host bits set (10.0.0.5/24 means 10.0.0.0/24)  |
 * | `cluster:timezone`       | error         | `cluster.timezone` is not a tz database name, spelt exactly (case counts) |
 * | `host:unique-name`       | error         | two hosts share a name                                               |
 * | `host:unique-address`    | error         | two hosts share an address                                           |
 * | `net:outside-network`    | error         | a host, VIP or `lab.address` outside `cluster.network`               |
 * | `net:reserved-address`   | error         | ... equal to the network's own or its broadcast address              |
 * | `vip:equals-host`        | error         | a VIP is also a host's address                                       |
 * | `vip:unique-address`     | error         | two VIPs share an address                                            |
 * | `vip:unique-name`        | error         | two VIPs share a name                                                |
 * | `vip:name-clash`         | error         | a VIP is named like a host (both would go to /etc/hosts)             |
 * | `vip:unique-router-id`   | error         | two VIPs share a VRRP `routerId`                                     |
 * | `vip:role-hosts`         | error/warning | the VIP's role has 0 hosts (error) or 1 host (warning: no failover)  |
 * | `quorum:etcd`            | error/warning | see {@link QUORUM}                                                   |
 * | `quorum:rabbitmq`        | error/warning | see {@link QUORUM}                                                   |
 * | `quorum:postgresql`      | warning       | see {@link QUORUM}                                                   |
 * | `patroni:needs-etcd`     | error         | `postgresql` hosts but no `etcd` host (Patroni's DCS)                |
 * | `role:required`          | error         | a role the command/playbook needs has no host (named with the step); the Airflow roles once any host has one |
 * | `airflow:none`           | warning       | the playbook needs Airflow roles but no host has one: it sets up the data plane only |
 * | `port:collision`         | error         | two roles on one host listen on the same port / overlapping range   |
 * | `port:duplicate`         | error         | two `cluster.ports` keys of one role have the same number            |
 * | `worker:queues`          | warning       | a worker host without `queues` (it consumes only `default`)          |
 * | `host:queues-unused`     | warning       | `queues` on a host without the `worker` role                         |
 * | `ssh:jump-unknown-host`  | error         | `ssh.jump` names a host (no `@`, `.`, `:`) that is not in the inventory |
 * | `ssh:jump-self`          | error         | a host's own `ssh.jump` names itself                                 |
 * | `ssh:jump-cycle`         | error         | jump hosts that lead back to where they started                      |
 * | `lab:address-clash`      | error         | `lab.address` equals a host's or a VIP's address                     |
 * | `postgresql:patroni-parameter` | error   | a `cluster.postgresql.parameters` key Patroni sets itself or keeps in the DCS |
 * | `packages:upstream-versions` | error     | kind `upstream` without a pinned version a role's component needs (see {@link UPSTREAM_VERSIONS}) |
 * | `packages:mirror-key`    | error         | a `packages.mirrors` key that names no upstream source               |
 * | `packages:mirrors-unused` | warning      | `packages.mirrors` with kind `distro` (only `upstream` reads them)   |
 * | `dags:nfs-hosts`         | error         | `dags.mode: nfs` but no host has the role nfs                        |
 * | `dags:nfs-vip`           | error         | DAGs on NFS but no VIP of role nfs for the clients to mount from     |
 * | `dags:sync-source`       | error         | `dags.mode: sync` written without `dags.source`                      |
 * | `ftp:passive-range`      | error         | `ftpPassiveMax` below `ftpPassiveMin`                                |
 * | `monitoring:hosts`       | error         | more than two hosts of role monitoring (one, or a pair of Alertmanager peers) |
 * | `monitoring:receivers`   | warning       | monitoring hosts but no receiver: alerts reach Alertmanager's API and UI only |
 * | `airflow:version`        | error         | `versions.airflow` is not 3.0.x-3.4.x or 2.9.x-2.11.x                |
 * | `airflow:end-of-life`    | warning       | Airflow hosts on 2.x, which reached end of life on 2026-04-22         |
 * | `airflow:install`        | error         | `airflow.install` lacks the `indexUrl`/`wheelhouse` its source needs |
 * | `postgresql:patroni-timings` | error     | `postgresql.ha`: loopWait + 2 * retryTimeout > ttl (Patroni's rule)  |
 * | `postgresql:strict-sync` | warning       | strict synchronous mode with fewer than 3 PostgreSQL hosts           |
 * | `broker:node-loss`       | warning       | worker hosts on an Airflow major whose Celery queues live on one RabbitMQ node (2.x) |
 * | `secrets:source`         | error         | a `secrets:` entry without exactly one of `env`/`command`, an empty program name, `timeoutSec` without `command` |
 * | `secrets:age`            | error         | `secretsFile.encryption: age` without `recipients` or `identityFile` |
 * | `secrets:age-unused`     | warning       | `recipients` or `identityFile` with `encryption: none` (the file is kept in clear) |
 * | `network:too-broad`      | warning       | `cluster.network` shorter than /{@link BROADEST_CLUSTER_PREFIX}            |
 * | `spof:<role>`            | warning       | one host of a role of {@link REDUNDANT_ROLES} (the seed gives it two) |
 * | `spof:database-path`     | warning       | HAProxy hosts but no haproxy VIP: the database path is one host     |
 * | `vip:keepalived`         | warning       | hosts of a VIP's role that run no keepalived ({@link runsKeepalived}) |
 * | `version:<component>`    | error         | a pin outside src/inventory/versions.ts SUPPORTED_VERSIONS          |
 * | `postgresql:unknown-parameter` | error   | a `postgresql.parameters` key no parameter of the pinned major (dotted names pass) |
 * | `ssh:jump-port`          | error         | the port of a jump `address:port` outside 1-65535                   |
 * | `ssh:identity-file`      | error         | an `ssh.identityFile` not readable on this machine (loader-checked) |
 *
 * `file:binary` and `file:encoding` (a NUL byte; a UTF-16/32 byte order mark or bytes that are not
 * UTF-8) come from load.ts `decodeInventory`, before the YAML is parsed.
 *
 * A top-level `ssh.jump` naming an inventory host applies to every other host; that host itself
 * is reached directly (it would otherwise jump through itself), which is not reported.
 */
import type { Diagnostic, SourcePos } from '../core/errors.js';
import { canonicalCidr, formatIpv4, inNetwork, isReservedInNetwork, parseCidr, parseIpv4, type Ipv4Network } from './net.js';
import { CELERY_QUEUES } from '../components/celery.js';
import { POSTGRESQL_15_PARAMETERS } from './data/postgresql-15-parameters.js';
import { TZ_NAMES } from './data/tz-names.js';
import { AIRFLOW_3_NEWEST, describeSupported, isSupportedVersion, SUPPORTED_VERSIONS, type VersionedComponent } from './versions.js';
import { AIRFLOW_ROLES, hostPortClaims, type PortClaim } from './ports.js';
import { MIRROR_KEYS, type Host, type Inventory, type Role } from './schema.js';

export { AIRFLOW_ROLES, hostPortClaims, ROLE_PORTS, type PortClaim, type PortSpec } from './ports.js';

export type YamlPath = readonly (string | number)[];

/** What a rule may use besides the inventory. */
export interface RuleContext {
  file: string;
  /** line/col of a YAML path (nearest existing parent when absent). */
  posOf(path: YamlPath): SourcePos;
  /** The value at a path as written in the file, or undefined when the file does not set it. */
  valueAt?(path: YamlPath): string | undefined;
  /** Roles the command about to run needs, each alone or with the step that needs it and why. */
  requiredRoles?: readonly (Role | RoleNeed)[] | undefined;
  /** That command's playbook name, for messages. */
  playbook?: string | undefined;
  /**
   * Where a local path as written (`~/...`, relative to the inventory file, or absolute) is on this
   * machine, and what is wrong with it there (`does not exist`, `is a directory`, ...), if
   * anything. `labKey`: the inventory has a `lab` section, whose key `lab up` creates (no problem
   * then for that path). Absent: local files are not checked.
   */
  localFile?(written: string, opts: { labKey: boolean }): { path: string; problem?: string | undefined };
}

export type Rule = (inv: Inventory, ctx: RuleContext) => Diagnostic[];

/** A role a playbook needs: the step that needs it and what for (a clause, e.g. "the Celery broker"). */
export interface RoleNeed {
  role: Role;
  step: string;
  why: string;
}

/** `['hosts', 3, 'address']` -> `hosts[3].address`; the root is `(document)`. */
export function formatPath(p: YamlPath): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? '(document)' : out;
}

/**
 * The candidate closest to `word` when it is close enough to be a likely typo: same letters
 * ignoring case, `_` and `-` (`router_id` -> `routerId`), or a small edit distance (`adress` -> `address`).
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const w = norm(word);
  const exact = candidates.find((c) => norm(c) === w);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, norm(c));
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  const allowed = Math.max(1, Math.floor(w.length / 3));
  return bestDist <= allowed ? best : undefined;
}

/** Damerau-Levenshtein (optimal string alignment): transpositions count as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function make(ctx: RuleContext, severity: Diagnostic['severity'], rule: string, at: YamlPath, message: string, value?: string | number): Diagnostic {
  return {
    severity,
    pos: ctx.posOf(at),
    path: formatPath(at),
    ...(value === undefined ? {} : { value: String(value) }),
    rule,
    message,
  };
}

function hostsWith(inv: Inventory, role: Role): { host: Host; index: number }[] {
  return inv.hosts.flatMap((host, index) => (host.roles.includes(role) ? [{ host, index }] : []));
}

/** Path of the `role` entry in the roles list of hosts[index]. */
function rolePath(inv: Inventory, index: number, role: Role): YamlPath {
  const i = inv.hosts[index]!.roles.indexOf(role);
  return i < 0 ? ['hosts', index, 'roles'] : ['hosts', index, 'roles', i];
}

function names(list: readonly { host: Host }[], max = 6): string {
  const shown = list.slice(0, max).map((h) => h.host.name);
  return list.length > max ? `${shown.join(', ')}, … (${list.length} in all)` : shown.join(', ');
}

// ---------------------------------------------------------------------------------------------

/**
 * The shortest prefix a cluster network may have without a warning. The whole cluster network is
 * admitted to the Airflow UI's frontend, FTP and the NFS export of the DAG files
 * (src/inventory/ports.ts clients `network`, templates/dags/exports.njk): a /8 opens them to 16.7
 * million addresses. The seeds' cluster is one /24 segment.
 */
export const BROADEST_CLUSTER_PREFIX = 16;

const clusterNetwork: Rule = (inv, ctx) => {
  const net = parseCidr(inv.cluster.network);
  if (!net) return [];
  const out: Diagnostic[] = [];
  if (net.base !== net.network) {
    out.push(make(ctx, 'warning', 'network:host-bits', ['cluster', 'network'], `has host bits set: the network is ${canonicalCidr(net)}; write that`, inv.cluster.network));
  }
  if (net.prefix < BROADEST_CLUSTER_PREFIX) {
    const size = 2 ** (32 - net.prefix);
    out.push(
      make(
        ctx,
        'warning',
        'network:too-broad',
        ['cluster', 'network'],
        `/${net.prefix} spans ${size.toLocaleString('en-US')} addresses: the firewall admits the whole cluster network to the Airflow UI and FTP, and the NFS export of the DAG files to all of it; write the hosts' own segment (/${BROADEST_CLUSTER_PREFIX} or narrower, e.g. /24)`,
        inv.cluster.network,
      ),
    );
  }
  return out;
};

/** The tz database's names, read once. */
let knownZones: Set<string> | undefined;

/**
 * Whether `tz` is a name of the tz database, spelt exactly as there: a zone (`Asia/Tehran`,
 * `Europe/Kyiv`, `UTC`) or a link (`Asia/Calcutta`, `Etc/UTC`, `US/Pacific`). Case counts: the
 * hosts' `timedatectl set-timezone` looks the name up as a file under /usr/share/zoneinfo, where
 * `asia/tehran` does not exist (Intl.DateTimeFormat would accept it: ICU ignores case). The names
 * are the snapshot src/inventory/data/tz-names.ts of tzdata's tzdata.zi (scripts/inventory-data.sh),
 * so validate gives the same answer on every operator's machine.
 */
export function isTimeZone(tz: string): boolean {
  knownZones ??= new Set(TZ_NAMES);
  return knownZones.has(tz);
}

const timezone: Rule = (inv, ctx) => {
  const tz = inv.cluster.timezone;
  if (isTimeZone(tz)) return [];
  const sameLetters = TZ_NAMES.find((z) => z.toLowerCase() === tz.toLowerCase());
  const hint = sameLetters ?? suggest(tz, TZ_NAMES);
  const why = sameLetters ? ' (names are case-sensitive)' : '';
  return [make(ctx, 'error', 'cluster:timezone', ['cluster', 'timezone'], `"${tz}" is not an IANA time zone of the tz database${why}${hint ? `; did you mean "${hint}"?` : ' (e.g. UTC, Asia/Tehran, Europe/Berlin)'}`, tz)];
};

const uniqueHosts: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  for (const field of ['name', 'address'] as const) {
    const seen = new Map<string, number>();
    inv.hosts.forEach((h, i) => {
      const v = h[field];
      const first = seen.get(v);
      if (first === undefined) {
        seen.set(v, i);
        return;
      }
      const line = ctx.posOf(['hosts', first, field]).line;
      out.push(
        make(ctx, 'error', `host:unique-${field}`, ['hosts', i, field], `${field} ${v} is already used by hosts[${first}]${field === 'address' ? ` (${inv.hosts[first]!.name})` : ''} on line ${line}`, v),
      );
    });
  }
  return out;
};

/** Every host, VIP and lab address inside the cluster network, and not its network/broadcast address. */
const addressesInNetwork: Rule = (inv, ctx) => {
  const net = parseCidr(inv.cluster.network);
  if (!net) return [];
  const out: Diagnostic[] = [];
  const check = (at: YamlPath, address: string, what: string) => {
    const d = addressProblem(address, net);
    if (d) out.push(make(ctx, 'error', d.rule, at, `${what} ${address} ${d.message}`, address));
  };
  inv.hosts.forEach((h, i) => check(['hosts', i, 'address'], h.address, `address of ${h.name}`));
  inv.cluster.vips.forEach((v, i) => check(['cluster', 'vips', i, 'address'], v.address, `VIP ${v.name}`));
  if (inv.lab) check(['lab', 'address'], inv.lab.address, 'lab bridge address');
  return out;
};

function addressProblem(address: string, net: Ipv4Network): { rule: string; message: string } | undefined {
  const a = parseIpv4(address);
  if (a === undefined) return undefined; // the schema already refused it
  if (!inNetwork(a, net)) return { rule: 'net:outside-network', message: `is outside cluster.network ${net.text} (${formatIpv4(net.network)}-${formatIpv4(net.broadcast)})` };
  if (isReservedInNetwork(a, net)) {
    const which = a === net.network ? 'the network address' : 'the broadcast address';
    return { rule: 'net:reserved-address', message: `is ${which} of ${canonicalCidr(net)}; no host can use it` };
  }
  return undefined;
}

const vips: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  const hostByAddress = new Map(inv.hosts.map((h, i) => [h.address, { h, i }]));
  const hostNames = new Set(inv.hosts.map((h) => h.name));
  const seenAddr = new Map<string, number>();
  const seenName = new Map<string, number>();
  const seenRouter = new Map<number, number>();
  inv.cluster.vips.forEach((v, i) => {
    const base = ['cluster', 'vips', i] as const;
    const host = hostByAddress.get(v.address);
    if (host) {
      out.push(make(ctx, 'error', 'vip:equals-host', [...base, 'address'], `VIP ${v.name} ${v.address} is also the address of host ${host.h.name} (hosts[${host.i}]): a VIP must be a free address that keepalived moves between hosts`, v.address));
    }
    const dupAddr = seenAddr.get(v.address);
    if (dupAddr !== undefined) out.push(make(ctx, 'error', 'vip:unique-address', [...base, 'address'], `VIP address ${v.address} is already used by cluster.vips[${dupAddr}]`, v.address));
    else seenAddr.set(v.address, i);
    const dupName = seenName.get(v.name);
    if (dupName !== undefined) out.push(make(ctx, 'error', 'vip:unique-name', [...base, 'name'], `VIP name ${v.name} is already used by cluster.vips[${dupName}]`, v.name));
    else seenName.set(v.name, i);
    if (hostNames.has(v.name)) out.push(make(ctx, 'error', 'vip:name-clash', [...base, 'name'], `VIP name ${v.name} is also a host's name: /etc/hosts would map one name to two addresses`, v.name));
    const dupRouter = seenRouter.get(v.routerId);
    if (dupRouter !== undefined) {
      out.push(make(ctx, 'error', 'vip:unique-router-id', [...base, 'routerId'], `routerId ${v.routerId} is already used by cluster.vips[${dupRouter}]: VRRP instances on one segment need distinct virtual_router_id`, v.routerId));
    } else seenRouter.set(v.routerId, i);

    const holders = hostsWith(inv, v.role);
    if (holders.length === 0) {
      out.push(make(ctx, 'error', 'vip:role-hosts', [...base, 'role'], `no host has role ${v.role}, so no host can hold VIP ${v.name}`, v.role));
    } else if (holders.length === 1) {
      out.push(make(ctx, 'warning', 'vip:role-hosts', [...base, 'role'], `only ${names(holders)} has role ${v.role}: VIP ${v.name} cannot fail over (give a second host that role)`, v.role));
    }
  });
  return out;
};

/**
 * Member-count thresholds of the clustered components.
 *
 * | role         | 0            | 1       | 2     | even >= 4 | odd 3-7 | odd > 7 | source |
 * |--------------|--------------|---------|-------|-----------|---------|---------|--------|
 * | `etcd`       | ok, unless `postgresql` hosts exist (`patroni:needs-etcd`) | warning: not HA | error | warning | ok | warning | etcd FAQ https://etcd.io/docs/v3.5/faq/ |
 * | `rabbitmq`   | ok (`role:required` covers commands that need it) | warning: not HA | error | warning | ok | ok | https://www.rabbitmq.com/docs/clustering |
 * | `postgresql` | ok (`role:required`) | warning: no replica | ok | ok | ok | ok | Patroni docs https://patroni.readthedocs.io/ |
 *
 * - etcd is Raft: quorum is floor(n/2)+1, so n members tolerate floor((n-1)/2) failures. 2 members
 *   tolerate none and lose quorum when EITHER fails — strictly worse than 1 (error). An even count
 *   tolerates no more failures than n-1 members while adding one more machine that can fail (warning).
 *   The FAQ recommends no more than seven members (writes slow down as the cluster grows).
 * - RabbitMQ: the clustering guide says to use an odd number of nodes and strongly discourages
 *   two-node clusters (no majority can be identified on a partition; quorum queues with 2 replicas stop
 *   when either node is lost).
 * - Patroni does not vote among PostgreSQL nodes: consensus is the DCS's (etcd) job, so 2 PostgreSQL
 *   nodes (primary + replica) already fail over. 1 node has nothing to fail over to.
 */
export const QUORUM = {
  etcd: { rule: 'quorum:etcd', consensus: true, maxRecommended: 7 },
  rabbitmq: { rule: 'quorum:rabbitmq', consensus: true, maxRecommended: Infinity },
  postgresql: { rule: 'quorum:postgresql', consensus: false, maxRecommended: Infinity },
} as const;

const quorum: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  for (const role of ['etcd', 'rabbitmq', 'postgresql'] as const) {
    const q = QUORUM[role];
    const members = hostsWith(inv, role);
    const n = members.length;
    if (n === 0) continue;
    const at = rolePath(inv, members[0]!.index, role);
    const who = `${n} ${role} host${n === 1 ? '' : 's'} (${names(members)})`;
    if (n === 1) {
      const why = role === 'postgresql' ? 'no replica to fail over to' : 'losing it stops the service';
      out.push(make(ctx, 'warning', q.rule, at, `${who}: not highly available, ${why}; use ${q.consensus ? '3' : '2 or more'}`));
    } else if (q.consensus && n === 2) {
      out.push(make(ctx, 'error', q.rule, at, `${who}: a 2-member cluster has a quorum of 2 and tolerates no failure — losing either member loses quorum; use 3 (or 1 for a non-HA test)`));
    } else if (q.consensus && n % 2 === 0) {
      out.push(make(ctx, 'warning', q.rule, at, `${who}: an even count tolerates no more failures than ${n - 1} members (quorum ${Math.floor(n / 2) + 1}); use an odd number`));
    } else if (n > q.maxRecommended) {
      out.push(make(ctx, 'warning', q.rule, at, `${who}: more than ${q.maxRecommended} members slows every write; ${role} recommends 3, 5 or 7`));
    }
  }
  return out;
};

const patroniNeedsEtcd: Rule = (inv, ctx) => {
  const pg = hostsWith(inv, 'postgresql');
  if (pg.length === 0 || hostsWith(inv, 'etcd').length > 0) return [];
  return [make(ctx, 'error', 'patroni:needs-etcd', rolePath(inv, pg[0]!.index, 'postgresql'), `${pg.length} postgresql host(s) (${names(pg)}) but no etcd host: Patroni needs etcd as its DCS; give 3 hosts the role etcd`)];
};

const requiredRoles: Rule = (inv, ctx) => {
  const present = new Set(inv.hosts.flatMap((h) => h.roles));
  const who = ctx.playbook ? `playbook ${ctx.playbook}` : 'this command';
  const all = (ctx.requiredRoles ?? []).map((r) => (typeof r === 'string' ? { role: r } : r));
  // The Airflow roles are needed once the inventory runs Airflow at all: an inventory of the data
  // plane alone (etcd, PostgreSQL, HAProxy, RabbitMQ) bootstraps the data plane, and says so.
  const runsAirflow = inv.hosts.some((h) => h.roles.some((r) => AIRFLOW_ROLES.includes(r)));
  const skipped = runsAirflow ? [] : all.filter((n) => AIRFLOW_ROLES.includes(n.role));
  const needs = all.filter((n) => !skipped.includes(n));
  const dataPlaneOnly = skipped.length > 0
    ? [make(ctx, 'warning', 'airflow:none', ['hosts'], `no host has an Airflow role (${AIRFLOW_ROLES.join(', ')}): ${who} sets up the data plane only; give hosts the roles ${[...new Set(skipped.map((n) => n.role))].join(' and ')} to run Airflow`)]
    : [];
  return dataPlaneOnly.concat(needs
    .filter((n, i) => !present.has(n.role) && needs.findIndex((m) => m.role === n.role) === i)
    .map((n) => {
      const step = 'step' in n ? ` (step "${n.step}": ${n.why})` : '';
      return make(ctx, 'error', 'role:required', ['hosts'], `no host has role ${n.role}, which ${who} needs${step}; give a host the role ${n.role}`, n.role);
    }));
};

// ---------------------------------------------------------------------------------------------
// Ports

// The matrix of ports and their clients lives in ./ports.ts (also the firewall's source).

function describeClaim(c: PortClaim): string {
  const what = c.setting ? `port ${c.setting}=${c.from}` : c.from === c.to ? `${c.label} port ${c.from}` : `${c.label} ${c.from}-${c.to}`;
  return c.role === 'ssh' ? `sshd port ${c.from}` : `${c.role}'s ${what}`;
}

const ports: Rule = (inv, ctx) => {
  interface Group {
    a: PortClaim;
    b: PortClaim;
    hosts: { host: Host; index: number }[];
  }
  const groups = new Map<string, Group>();
  inv.hosts.forEach((host, index) => {
    const claims = hostPortClaims(host, inv);
    for (let i = 0; i < claims.length; i++) {
      for (let j = i + 1; j < claims.length; j++) {
        const a = claims[i]!;
        const b = claims[j]!;
        if (a.role === b.role && a.label === b.label) continue;
        // One setting claimed by two roles of a host is one listener (the triggerer's log server
        // on a host with both the scheduler and the triggerer role).
        if (a.setting !== undefined && a.setting === b.setting) continue;
        if (a.from > b.to || b.from > a.to) continue;
        const id = [`${a.role}/${a.label}`, `${b.role}/${b.label}`].sort().join('|');
        const g = groups.get(id) ?? { a, b, hosts: [] };
        g.hosts.push({ host, index });
        groups.set(id, g);
      }
    }
  });
  const out: Diagnostic[] = [];
  for (const { a, b, hosts } of groups.values()) {
    const first = hosts[0]!;
    const where = hosts.length === 1 ? `on host ${first.host.name}` : `on hosts ${names(hosts)}`;
    // Point at the setting the user wrote, if any; otherwise at the roles that bring the clash.
    const written = [b, a].find((c) => c.setting && ctx.valueAt?.(['cluster', 'ports', c.setting]) !== undefined);
    const sshInvolved = [a, b].some((c) => c.role === 'ssh');
    let at: YamlPath = ['hosts', first.index, 'roles'];
    if (written?.setting) at = ['cluster', 'ports', written.setting];
    else if (sshInvolved && first.host.ssh?.port !== undefined) at = ['hosts', first.index, 'ssh', 'port'];
    else if (sshInvolved && inv.ssh.port !== undefined) at = ['ssh', 'port'];
    const sameRole = a.role === b.role;
    const inside = a.from !== a.to || b.from !== b.to;
    const verb = inside ? 'overlaps' : 'is the same port as';
    const fixes = [a, b].filter((c) => c.setting).map((c) => `cluster.ports.${c.setting}`);
    const fix = sshInvolved
      ? `change ${[...fixes, 'the SSH port'].join(' or ')}`
      : sameRole
        ? `give ${fixes.join(' or ')} another number`
        : fixes.length > 0
          ? `change ${fixes.join(' or ')}, or put ${a.role} and ${b.role} on different hosts`
          : `put ${a.role} and ${b.role} on different hosts`;
    const value = b.from === b.to ? b.from : a.from;
    out.push(make(ctx, 'error', sameRole ? 'port:duplicate' : 'port:collision', at, `${where}, ${describeClaim(b)} ${verb} ${describeClaim(a)}: ${fix}`, value));
  }
  return out;
};

// ---------------------------------------------------------------------------------------------

const queues: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  inv.hosts.forEach((h, i) => {
    const worker = h.roles.includes('worker');
    if (worker && !h.queues) {
      out.push(make(ctx, 'warning', 'worker:queues', ['hosts', i, 'queues'], `worker host ${h.name} has no queues: it will consume only the queue "default"`));
    } else if (!worker && h.queues) {
      out.push(make(ctx, 'warning', 'host:queues-unused', ['hosts', i, 'queues'], `host ${h.name} has queues but not the role worker: they are ignored`));
    }
  });
  return out;
};

/** A jump given as a bare name (no `@`, `.`, `:`) is an inventory host name. */
export function jumpHostName(jump: string): string | undefined {
  return /[@.:]/.test(jump) ? undefined : jump;
}

const sshJump: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  const byName = new Map(inv.hosts.map((h, i) => [h.name, i]));
  const unknown = (at: YamlPath, jump: string) => {
    const name = jumpHostName(jump);
    if (name === undefined || byName.has(name)) return;
    const hint = suggest(name, [...byName.keys()]);
    out.push(make(ctx, 'error', 'ssh:jump-unknown-host', at, `jump host ${name} is not a host of this inventory${hint ? `; did you mean "${hint}"?` : ''} (write user@address[:port] for a host outside it)`, jump));
  };
  if (inv.ssh.jump) unknown(['ssh', 'jump'], inv.ssh.jump);
  inv.hosts.forEach((h, i) => {
    if (!h.ssh?.jump) return;
    unknown(['hosts', i, 'ssh', 'jump'], h.ssh.jump);
    if (jumpHostName(h.ssh.jump) === h.name) {
      out.push(make(ctx, 'error', 'ssh:jump-self', ['hosts', i, 'ssh', 'jump'], `host ${h.name} cannot be its own jump host`, h.ssh.jump));
    }
  });

  // Cycles through inventory hosts (a -> b -> a). Self-jumps are reported above; an inherited
  // top-level jump to a host is not followed from that host itself (it is reached directly).
  const next = (i: number): number | undefined => {
    const h = inv.hosts[i]!;
    const jump = h.ssh?.jump ?? inv.ssh.jump;
    const name = jump === undefined ? undefined : jumpHostName(jump);
    const j = name === undefined ? undefined : byName.get(name);
    return j === undefined || j === i ? undefined : j;
  };
  const reported = new Set<number>();
  inv.hosts.forEach((_, start) => {
    const chain: number[] = [];
    let cur: number | undefined = start;
    while (cur !== undefined && !chain.includes(cur)) {
      chain.push(cur);
      cur = next(cur);
    }
    if (cur === undefined || cur !== start || chain.some((i) => reported.has(i))) return;
    chain.forEach((i) => reported.add(i));
    const h = inv.hosts[start]!;
    const at: YamlPath = h.ssh?.jump !== undefined ? ['hosts', start, 'ssh', 'jump'] : ['ssh', 'jump'];
    const loop = [...chain, start].map((i) => inv.hosts[i]!.name).join(' -> ');
    out.push(make(ctx, 'error', 'ssh:jump-cycle', at, `jump hosts form a loop: ${loop}`, h.ssh?.jump ?? inv.ssh.jump));
  });
  return out;
};

const labAddress: Rule = (inv, ctx) => {
  if (!inv.lab) return [];
  const a = inv.lab.address;
  const host = inv.hosts.find((h) => h.address === a);
  const vip = inv.cluster.vips.find((v) => v.address === a);
  const what = host ? `host ${host.name}` : vip ? `VIP ${vip.name}` : undefined;
  return what ? [make(ctx, 'error', 'lab:address-clash', ['lab', 'address'], `lab bridge address ${a} is also the address of ${what}`, a)] : [];
};

/**
 * PostgreSQL parameters a local `postgresql.parameters` cannot set. Patroni writes the first group
 * itself from other settings (listen address, port, data dir, ...); the second lives only in the
 * DCS, must be equal on every node and is ignored in a local config (Patroni docs,
 * dynamic_configuration.rst and patroni_configuration.rst "PostgreSQL parameters controlled by
 * Patroni"): change those with `patronictl edit-config`.
 */
export const PATRONI_OWNED_PARAMETERS: Readonly<Record<string, 'local' | 'dcs'>> = {
  listen_addresses: 'local',
  port: 'local',
  cluster_name: 'local',
  data_directory: 'local',
  config_file: 'local',
  hba_file: 'local',
  ident_file: 'local',
  hot_standby: 'local',
  primary_conninfo: 'local',
  primary_slot_name: 'local',
  restore_command: 'local',
  recovery_target_timeline: 'local',
  max_connections: 'dcs',
  max_locks_per_transaction: 'dcs',
  max_worker_processes: 'dcs',
  max_prepared_transactions: 'dcs',
  wal_level: 'dcs',
  track_commit_timestamp: 'dcs',
  max_wal_senders: 'dcs',
  max_replication_slots: 'dcs',
  wal_keep_segments: 'dcs',
  wal_keep_size: 'dcs',
  wal_log_hints: 'dcs',
};

const postgresParameters: Rule = (inv, ctx) =>
  Object.keys(inv.cluster.postgresql.parameters).flatMap((name) => {
    const owner = PATRONI_OWNED_PARAMETERS[name];
    if (!owner) return [];
    const why =
      owner === 'dcs'
        ? 'Patroni keeps it in the DCS, equal on every node, and ignores it in a local config: change it with `patronictl edit-config`'
        : 'Patroni sets it itself from its own settings';
    return [make(ctx, 'error', 'postgresql:patroni-parameter', ['cluster', 'postgresql', 'parameters', name], `${name} cannot be set here: ${why}`, name)];
  });

/**
 * Patroni's timing rule (https://patroni.readthedocs.io/en/v3.0.2/dynamic_configuration.html):
 * `loop_wait + 2 * retry_timeout <= ttl`, or a leader that retries the DCS for retry_timeout
 * loses its lock before it can demote itself, and two nodes may run as primary. Strict synchronous
 * mode with fewer than 3 PostgreSQL hosts stops every write while the one replica is down.
 */
const postgresHa: Rule = (inv, ctx) => {
  const ha = inv.cluster.postgresql.ha;
  const at: YamlPath = ['cluster', 'postgresql', 'ha'];
  const out: Diagnostic[] = [];
  if (ha.loopWait + 2 * ha.retryTimeout > ha.ttl) {
    out.push(make(ctx, 'error', 'postgresql:patroni-timings', [...at, ctx.valueAt?.([...at, 'ttl']) !== undefined ? 'ttl' : 'retryTimeout'], `loopWait ${ha.loopWait} + 2 * retryTimeout ${ha.retryTimeout} = ${ha.loopWait + 2 * ha.retryTimeout} s exceeds ttl ${ha.ttl} s: Patroni needs loop_wait + 2 * retry_timeout <= ttl, or a leader may lose its lock before it demotes itself`, ha.ttl));
  }
  const nodes = inv.hosts.filter((h) => h.roles.includes('postgresql')).length;
  const sync = ha.synchronous === 'on' || (ha.synchronous === 'auto' && nodes >= 3);
  if (ha.strict && sync && nodes < 3) {
    out.push(make(ctx, 'warning', 'postgresql:strict-sync', [...at, 'strict'], `strict synchronous mode with ${nodes} PostgreSQL host(s): every write stops while the only replica is down; use 3 or more hosts`, 'true'));
  }
  return out;
};

/**
 * What a RabbitMQ node loss costs the queued tasks of the inventory's Airflow major, when it costs
 * anything (src/components/celery.ts CELERY_QUEUES): a warning on `versions.airflow`.
 */
const brokerNodeLoss: Rule = (inv, ctx) => {
  const major = Number(inv.cluster.versions.airflow.split('.')[0]);
  const row = CELERY_QUEUES[major as 2 | 3];
  const hasWorkers = inv.hosts.some((h) => h.roles.includes('worker'));
  if (!row?.nodeLoss || !hasWorkers || !inv.hosts.some((h) => h.roles.includes('rabbitmq'))) return [];
  return [make(ctx, 'warning', 'broker:node-loss', ['cluster', 'versions', 'airflow'], `Airflow ${inv.cluster.versions.airflow} (Celery ${row.celery}): ${row.nodeLoss}. Airflow 3 (Celery >= 5.5) gets quorum queues`, inv.cluster.versions.airflow)];
};

/**
 * The versions kind `upstream` must pin, per role: the upstream repositories carry many versions,
 * and an unpinned install would give a host added later a newer one than its peers. PostgreSQL's
 * major has a default (`15`) and is part of the package names.
 */
export const UPSTREAM_VERSIONS: Readonly<Partial<Record<Role, readonly ('patroni' | 'etcd' | 'rabbitmq' | 'erlang')[]>>> = {
  postgresql: ['patroni'],
  etcd: ['etcd'],
  rabbitmq: ['rabbitmq', 'erlang'],
};

const packageSource: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  const pk = inv.cluster.packages;
  for (const key of Object.keys(pk.mirrors ?? {})) {
    if ((MIRROR_KEYS as readonly string[]).includes(key)) continue;
    const hint = suggest(key, MIRROR_KEYS);
    out.push(make(ctx, 'error', 'packages:mirror-key', ['cluster', 'packages', 'mirrors', key], `"${key}" is not a source airflow-ha can mirror${hint ? `; did you mean "${hint}"?` : ''} (known: ${MIRROR_KEYS.join(', ')})`, key));
  }
  if (pk.kind !== 'upstream') {
    if (pk.mirrors && Object.keys(pk.mirrors).length > 0) {
      out.push(make(ctx, 'warning', 'packages:mirrors-unused', ['cluster', 'packages', 'mirrors'], 'mirrors are read only with kind upstream; with kind distro the hosts use the repositories they already have'));
    }
    return out;
  }
  const roles = new Set(inv.hosts.flatMap((h) => h.roles));
  const needed = new Map<string, Role>();
  for (const [role, versions] of Object.entries(UPSTREAM_VERSIONS) as [Role, readonly string[]][]) {
    if (!roles.has(role)) continue;
    for (const v of versions) if (!needed.has(v)) needed.set(v, role);
  }
  const versions = inv.cluster.versions as Record<string, string | undefined>;
  const missing = [...needed].filter(([v]) => !versions[v]);
  if (missing.length > 0) {
    // At `cluster.versions` when the file has it, else at its nearest parent (posOf's rule).
    const at: YamlPath = ['cluster', 'versions'];
    out.push(
      make(
        ctx,
        'error',
        'packages:upstream-versions',
        at,
        `kind upstream needs pinned versions: ${missing.map(([v, role]) => `versions.${v} (role ${role})`).join(', ')}; pin the version your site tested, e.g. versions: { ${missing.map(([v]) => `${v}: "X.Y.Z"`).join(', ')} }`,
      ),
    );
  }
  return out;
};

// ---------------------------------------------------------------------------------------------
// DAG storage, FTP

/** The roles whose hosts read the DAG folder (every Airflow role but Flower). */
export const DAG_READER_ROLES: readonly Role[] = ['scheduler', 'webserver', 'triggerer', 'dag_processor', 'worker'];

/** `cluster.dags.mode`, or its default: `nfs` when a host has the role nfs, else `sync`. */
export function dagsMode(inv: Inventory): 'nfs' | 'sync' | 'git' {
  return inv.cluster.dags.mode ?? (inv.hosts.some((h) => h.roles.includes('nfs')) ? 'nfs' : 'sync');
}

const dags: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  const mode = dagsMode(inv);
  const airflowHosts = inv.hosts.filter((h) => h.roles.some((r) => DAG_READER_ROLES.includes(r)));
  const nfs = hostsWith(inv, 'nfs');
  if (mode === 'nfs' && nfs.length === 0 && airflowHosts.length > 0) {
    out.push(make(ctx, 'error', 'dags:nfs-hosts', ['cluster', 'dags', 'mode'], `DAGs on NFS, but no host has the role nfs to serve them; give 2 hosts the role nfs (and a VIP of role nfs), or use mode sync`, mode));
  }
  if (mode === 'nfs' && nfs.length > 0 && !inv.cluster.vips.some((v) => v.role === 'nfs')) {
    out.push(make(ctx, 'error', 'dags:nfs-vip', ['cluster', 'vips'], `DAGs on NFS from ${names(nfs)}, but no VIP has the role nfs: the clients mount from that VIP; add one to cluster.vips`));
  }
  if (inv.cluster.dags.mode === 'sync' && inv.cluster.dags.source === undefined) {
    out.push(make(ctx, 'error', 'dags:sync-source', ['cluster', 'dags'], 'mode sync copies a folder of the operator\'s machine: set dags.source (relative to this file)'));
  }
  if (mode === 'git') {
    const airflow = inv.cluster.versions.airflow;
    // Git DAG bundles are Airflow 3's (apache-airflow-providers-git, [dag_processor] dag_bundle_config_list).
    if (Number(airflow.split('.')[0]) < 3) {
      out.push(make(ctx, 'error', 'dags:git-airflow', ['cluster', 'dags', 'mode'], `mode git uses Airflow 3's Git DAG bundle; this cluster runs Airflow ${airflow}: use mode sync or nfs, or Airflow 3`, mode));
    }
    const git = inv.cluster.dags.git;
    if (!git) {
      out.push(make(ctx, 'error', 'dags:git-url', ['cluster', 'dags'], 'mode git clones a repository: set dags.git.url (and dags.git.knownHosts for an SSH URL)'));
    } else if (!git.url.startsWith('https://') && git.knownHosts === undefined) {
      out.push(make(ctx, 'error', 'dags:git-known-hosts', ['cluster', 'dags', 'git'], `${git.url} is reached over SSH: pin the server's host key in dags.git.knownHosts (one known_hosts line, e.g. from \`ssh-keyscan -t ed25519 HOST\`, checked against the server's fingerprint)`));
    }
  } else if (inv.cluster.dags.git !== undefined) {
    out.push(make(ctx, 'warning', 'dags:git-unused', ['cluster', 'dags', 'git'], `dags.git is set but the mode is ${mode}: it is not used`));
  }
  return out;
};

const ftpPassive: Rule = (inv, ctx) => {
  const { ftpPassiveMin: min, ftpPassiveMax: max } = inv.cluster.ports;
  if (max >= min) return [];
  return [make(ctx, 'error', 'ftp:passive-range', ['cluster', 'ports', 'ftpPassiveMax'], `the FTP passive range ends (${max}) before it starts (ftpPassiveMin ${min})`, max)];
};

/**
 * The monitoring role: one host, or two (each Prometheus scrapes everything and sends to both
 * Alertmanagers, which gossip to send each notification once: Alertmanager's README "High
 * Availability", https://github.com/prometheus/alertmanager#high-availability). A third adds nothing.
 */
const monitoringHosts: Rule = (inv, ctx) => {
  const idx = inv.hosts.flatMap((h, i) => (h.roles.includes('monitoring') ? [i] : []));
  if (idx.length === 0) return [];
  if (idx.length > 2) {
    const third = idx[2]!;
    return [make(ctx, 'error', 'monitoring:hosts', ['hosts', third, 'roles'], `${idx.length} hosts have the role monitoring (${names(idx.map((i) => ({ host: inv.hosts[i]!, index: i })))}): one or two are supported (a pair of Alertmanager peers); take it off ${inv.hosts[third]!.name}`, 'monitoring')];
  }
  const r = inv.cluster.monitoring.receivers;
  if (r.email || r.webhook) return [];
  return [make(ctx, 'warning', 'monitoring:receivers', ['hosts', idx[0]!, 'roles'], 'monitoring hosts but no cluster.monitoring.receivers (email or webhook): firing alerts are seen only in Alertmanager\'s API and UI, nobody is woken', 'monitoring')];
};

export { AIRFLOW_3_NEWEST } from './versions.js';

/**
 * Supported Airflow versions: 2.9 to 2.11 and 3.0 to 3.4 (each has its constraints file). Airflow
 * 2.x reached end of life on 2026-04-22
 * (https://airflow.apache.org/docs/apache-airflow/stable/installation/supported-versions.html): a
 * warning on every run with a 2.x cluster. The layout of each major: src/components/airflow.ts
 * AIRFLOW_LAYOUTS.
 */
const airflowVersion: Rule = (inv, ctx) => {
  const v = inv.cluster.versions.airflow;
  const at: YamlPath = ['cluster', 'versions', 'airflow'];
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  const major = Number(m?.[1]);
  const minor = Number(m?.[2]);
  const newestMinor = Number(AIRFLOW_3_NEWEST.split('.')[1]);
  const supported = m !== null && ((major === 2 && minor >= 9 && minor <= 11) || (major === 3 && minor <= newestMinor));
  if (!supported) {
    return [make(ctx, 'error', 'airflow:version', at, `"${v}" is not a supported Airflow version: use a full version from 3.0.0 to 3.${newestMinor}.x (newest "${AIRFLOW_3_NEWEST}"), or 2.9.0 to 2.11.x (end of life)`, v)];
  }
  if (major === 3 || !inv.hosts.some((h) => h.roles.some((r) => AIRFLOW_ROLES.includes(r)))) return [];
  return [make(ctx, 'warning', 'airflow:end-of-life', at, `Airflow ${v}: the 2.x line reached end of life on 2026-04-22 (no more fixes, security ones included); plan the move to Airflow 3 (${AIRFLOW_3_NEWEST})`, v)];
};

const airflowInstall: Rule = (inv, ctx) => {
  const i = inv.cluster.airflow.install;
  const at: YamlPath = ['cluster', 'airflow', 'install'];
  if (i.source === 'index' && !i.indexUrl) return [make(ctx, 'error', 'airflow:install', [...at, 'source'], 'source index needs indexUrl (the package index pip installs from)', i.source)];
  if (i.source === 'wheelhouse' && !i.wheelhouse) return [make(ctx, 'error', 'airflow:install', [...at, 'source'], 'source wheelhouse needs wheelhouse (a folder of wheels and constraints.txt, relative to the inventory file)', i.source)];
  return [];
};

/** `secrets:`: each entry names exactly one source; a command has a program to run. */
const secretSources: Rule = (inv, ctx) => {
  const out: Diagnostic[] = [];
  for (const [name, src] of Object.entries(inv.secrets ?? {})) {
    if (!src) continue;
    const at: YamlPath = ['secrets', name];
    if ((src.env === undefined) === (src.command === undefined)) {
      out.push(make(ctx, 'error', 'secrets:source', at, `${name}: give exactly one source, env: VARIABLE or command: [program, args...]${src.env !== undefined ? ' (both are given)' : ''}`));
    } else if (src.command !== undefined && src.command[0] === '') {
      out.push(make(ctx, 'error', 'secrets:source', [...at, 'command', 0], `${name}: the command's first word is the program to run; it is empty`));
    } else if (src.env !== undefined && src.timeoutSec !== undefined) {
      out.push(make(ctx, 'error', 'secrets:source', [...at, 'timeoutSec'], `${name}: timeoutSec bounds a command; an env source has none`, src.timeoutSec));
    }
  }
  return out;
};

/** `secretsFile:`: age needs someone to encrypt to and a key to decrypt with. */
const secretsAge: Rule = (inv, ctx) => {
  const f = inv.secretsFile;
  const at: YamlPath = ['secretsFile'];
  if (f.encryption === 'age') {
    const out: Diagnostic[] = [];
    if (f.recipients.length === 0) out.push(make(ctx, 'error', 'secrets:age', [...at, 'encryption'], 'encryption age needs recipients: [age1...] (the public key age-keygen prints; every recipient can decrypt the file)', f.encryption));
    if (f.identityFile === undefined) out.push(make(ctx, 'error', 'secrets:age', [...at, 'encryption'], 'encryption age needs identityFile: the age identity (private key) file that decrypts the secrets file', f.encryption));
    return out;
  }
  if (f.recipients.length > 0 || f.identityFile !== undefined) {
    return [make(ctx, 'warning', 'secrets:age-unused', [...at, f.recipients.length > 0 ? 'recipients' : 'identityFile'], 'recipients and identityFile are read only with encryption: age; the secrets file is kept in clear')];
  }
  return [];
};

// ---------------------------------------------------------------------------------------------
// Single points of failure, versions, PostgreSQL parameters, SSH

/**
 * Roles the seed layout ("zero single point of failure", seed 003) gives two hosts, whose single
 * host no other rule reports, with what stops while that host is down. The other roles the seed
 * makes redundant have their rules already: postgresql, etcd and rabbitmq `quorum:*`, haproxy and
 * nfs `vip:role-hosts` (their VIP, which `dags:nfs-vip` makes mandatory for nfs) and
 * `spof:database-path`. A single worker, flower, ftp or target host is the seed's own layout.
 */
export const REDUNDANT_ROLES: Readonly<Partial<Record<Role, string>>> = {
  scheduler: 'no task is scheduled while it is down (schedulers run active/active on row-level locks)',
  webserver: 'the UI and the REST API are down with it (the seed runs two behind the VIP)',
  dag_processor: 'DAG files are not parsed while it is down (a second host stands by on an etcd lock)',
};

const singleHosts: Rule = (inv, ctx) =>
  (Object.entries(REDUNDANT_ROLES) as [Role, string][]).flatMap(([role, why]) => {
    const holders = hostsWith(inv, role);
    if (holders.length !== 1) return [];
    const only = holders[0]!;
    return [make(ctx, 'warning', `spof:${role}`, rolePath(inv, only.index, role), `only ${only.host.name} has role ${role}: ${why}; give a second host the role ${role}`, role)];
  });

/**
 * Without a haproxy VIP, Airflow's database address is the first haproxy host's own
 * (src/components/airflow.ts `databaseEndpoint`): every Airflow host loses PostgreSQL with that one
 * host, however many HAProxy hosts and Patroni replicas there are.
 */
const databasePath: Rule = (inv, ctx) => {
  const lb = hostsWith(inv, 'haproxy');
  const airflow = inv.hosts.some((h) => h.roles.some((r) => AIRFLOW_ROLES.includes(r)));
  if (lb.length === 0 || !airflow || inv.cluster.vips.some((v) => v.role === 'haproxy')) return [];
  const first = lb[0]!.host;
  return [
    make(ctx, 'warning', 'spof:database-path', ['cluster', 'vips'], `no VIP has role haproxy: every Airflow host reaches PostgreSQL through HAProxy on ${first.name} (${first.address}) alone and loses its database with that host; add a VIP of role haproxy to cluster.vips`),
  ];
};

/**
 * Whether keepalived runs on `host`: the haproxy playbook's keepalived step on the haproxy hosts
 * when a haproxy VIP exists (playbooks/haproxy.ts), the nfs VIP step on the nfs hosts with DAGs on
 * NFS (playbooks/dags.ts `nfsVipStep`). Either renders every VIP of the host's roles
 * (src/components/keepalived.ts `hostVips`); no other step runs keepalived.
 */
export function runsKeepalived(inv: Inventory, host: Host): boolean {
  return (host.roles.includes('haproxy') && inv.cluster.vips.some((v) => v.role === 'haproxy')) || (host.roles.includes('nfs') && dagsMode(inv) === 'nfs');
}

const vipKeepalived: Rule = (inv, ctx) =>
  inv.cluster.vips.flatMap((v, i) => {
    const holders = hostsWith(inv, v.role);
    const idle = holders.filter((h) => !runsKeepalived(inv, h.host));
    if (idle.length === 0) return [];
    const at: YamlPath = ['cluster', 'vips', i, 'role'];
    const runs = `keepalived runs on the haproxy hosts when a haproxy VIP exists and on the nfs hosts with dags.mode nfs (here ${dagsMode(inv)})`;
    if (idle.length === holders.length) {
      return [make(ctx, 'warning', 'vip:keepalived', at, `no host of role ${v.role} runs keepalived, so VIP ${v.name} ${v.address} is never held: ${runs}`, v.role)];
    }
    return [make(ctx, 'warning', 'vip:keepalived', at, `${names(idle)} ${idle.length === 1 ? 'has' : 'have'} role ${v.role} but run${idle.length === 1 ? 's' : ''} no keepalived, so ${idle.length === 1 ? 'it' : 'they'} never hold${idle.length === 1 ? 's' : ''} VIP ${v.name}: ${runs}`, v.role)];
  });

/** Each pinned version inside its component's supported series (src/inventory/versions.ts). */
const versions: Rule = (inv, ctx) => {
  const pinned = inv.cluster.versions as Record<string, string | undefined>;
  return (Object.keys(SUPPORTED_VERSIONS) as VersionedComponent[]).flatMap((c) => {
    const v = pinned[c];
    if (v === undefined || isSupportedVersion(c, v)) return [];
    return [make(ctx, 'error', `version:${c}`, ['cluster', 'versions', c], `${c} ${v} is not a supported version: airflow-ha supports ${describeSupported(c)}`, v)];
  });
};

/**
 * PostgreSQL's parameter names by supported major, lower-cased (names are case-insensitive,
 * `DateStyle` = `datestyle`), each from `postgres --describe-config` (scripts/inventory-data.sh).
 * That list leaves out what PostgreSQL keeps from postgresql.conf.sample: the read-only internal
 * parameters and the developer options ("should never be used on a production database",
 * https://www.postgresql.org/docs/15/runtime-config-developer.html).
 */
const PARAMETERS_BY_MAJOR: Readonly<Record<string, Readonly<Record<string, string>>>> = { '15': POSTGRESQL_15_PARAMETERS };
const parameterNames = new Map<string, Set<string>>();

/** The lower-cased parameter names of PostgreSQL `major`, or undefined for a major without a list. */
function knownParameters(major: string): Set<string> | undefined {
  const table = PARAMETERS_BY_MAJOR[major];
  if (!table) return undefined;
  let names = parameterNames.get(major);
  if (!names) {
    names = new Set(Object.keys(table).map((n) => n.toLowerCase()));
    parameterNames.set(major, names);
  }
  return names;
}

/**
 * Every `cluster.postgresql.parameters` name a parameter of the pinned PostgreSQL major, or a
 * custom `extension.name` (a dot: PostgreSQL accepts those for extensions). Names Patroni owns are
 * left to `postgresql:patroni-parameter`; an unsupported major to `version:postgresql`.
 */
const postgresParameterNames: Rule = (inv, ctx) => {
  const major = inv.cluster.versions.postgresql;
  const known = knownParameters(major);
  if (!known) return [];
  return Object.keys(inv.cluster.postgresql.parameters).flatMap((name) => {
    if (name.includes('.') || PATRONI_OWNED_PARAMETERS[name] || known.has(name.toLowerCase())) return [];
    const hint = suggest(name, [...known]);
    return [
      make(ctx, 'error', 'postgresql:unknown-parameter', ['cluster', 'postgresql', 'parameters', name], `${name} is not a PostgreSQL ${major} parameter${hint ? `; did you mean "${hint}"?` : ''} (an extension's own parameters are written extension.name)`, name),
    ];
  });
};

/**
 * The parameters airflow-ha sets itself when a host has the role `backup` (WAL archiving through
 * pgBackRest, src/components/backup.ts `backupParameters`): the inventory may not set them too.
 */
export const BACKUP_OWNED_PARAMETERS: readonly string[] = ['archive_mode', 'archive_command', 'archive_library'];

/**
 * pgBackRest's layout: one repository host (role `backup`; pgBackRest's "Dedicated Repository
 * Host" has one, and two would each hold half of the WAL), PostgreSQL hosts to back up, no
 * `archive_*` parameter of the operator's beside airflow-ha's own, and a warning when the repository
 * shares a host with PostgreSQL (losing that host loses a node and its backups).
 */
const backup: Rule = (inv, ctx) => {
  const hosts = hostsWith(inv, 'backup');
  if (hosts.length === 0) return [];
  const out: Diagnostic[] = [];
  if (hosts.length > 1) {
    for (const h of hosts.slice(1)) out.push(make(ctx, 'error', 'backup:hosts', rolePath(inv, h.index, 'backup'), `${names(hosts)} have the role backup: the pgBackRest repository lives on one host; keep the role on ${hosts[0]!.host.name} only`, 'backup'));
  }
  if (hostsWith(inv, 'postgresql').length === 0) {
    out.push(make(ctx, 'error', 'backup:needs-postgresql', rolePath(inv, hosts[0]!.index, 'backup'), `${hosts[0]!.host.name} holds the backups of the PostgreSQL hosts, but no host has the role postgresql`, 'backup'));
  }
  for (const h of hosts) {
    if (h.host.roles.includes('postgresql')) out.push(make(ctx, 'warning', 'backup:on-postgresql', rolePath(inv, h.index, 'backup'), `${h.host.name} holds the repository and a PostgreSQL node: losing that host loses the backups too; give the role backup to a host of its own`, 'backup'));
  }
  for (const name of BACKUP_OWNED_PARAMETERS) {
    if (Object.hasOwn(inv.cluster.postgresql.parameters, name)) {
      out.push(make(ctx, 'error', 'backup:archive-parameter', ['cluster', 'postgresql', 'parameters', name], `${name} is set by airflow-ha for pgBackRest's WAL archiving while a host has the role backup; remove it from cluster.postgresql.parameters`, name));
    }
  }
  return out;
};

/** The port of a jump spec `[user@]address:port`, in 1-65535 (the schema allows any 1-5 digits). */
const jumpPorts: Rule = (inv, ctx) => {
  const at: { path: YamlPath; jump: string }[] = [];
  if (inv.ssh.jump) at.push({ path: ['ssh', 'jump'], jump: inv.ssh.jump });
  inv.hosts.forEach((h, i) => h.ssh?.jump && at.push({ path: ['hosts', i, 'ssh', 'jump'], jump: h.ssh.jump }));
  return at.flatMap(({ path, jump }) => {
    const port = /:([0-9]+)$/.exec(jump)?.[1];
    if (port === undefined || (Number(port) >= 1 && Number(port) <= 65535)) return [];
    return [make(ctx, 'error', 'ssh:jump-port', path, `port ${port} of jump host ${jump} is not a TCP port (1-65535)`, jump)];
  });
};

/**
 * Every `ssh.identityFile` (top level and per host) a readable file on this machine: validate runs
 * on the operator's machine, which is where the key must be. Checked only when the loader says how
 * to look (`RuleContext.localFile`); the lab's own key, which `airflow-ha lab up` creates, is not.
 */
const identityFiles: Rule = (inv, ctx) => {
  const look = ctx.localFile;
  if (!look) return [];
  const at: { path: YamlPath; file: string }[] = [];
  if (inv.ssh.identityFile) at.push({ path: ['ssh', 'identityFile'], file: inv.ssh.identityFile });
  inv.hosts.forEach((h, i) => h.ssh?.identityFile && at.push({ path: ['hosts', i, 'ssh', 'identityFile'], file: h.ssh.identityFile }));
  return at.flatMap(({ path, file }) => {
    const found = look(file, { labKey: inv.lab !== undefined });
    if (!found.problem) return [];
    return [make(ctx, 'error', 'ssh:identity-file', path, `identity file ${found.path} ${found.problem} on this machine`, file)];
  });
};

/** Every rule, in the order their findings are produced. */
export const RULES: readonly Rule[] = [
  clusterNetwork,
  timezone,
  uniqueHosts,
  addressesInNetwork,
  vips,
  quorum,
  patroniNeedsEtcd,
  requiredRoles,
  ports,
  queues,
  sshJump,
  labAddress,
  postgresParameters,
  postgresHa,
  packageSource,
  dags,
  ftpPassive,
  monitoringHosts,
  airflowVersion,
  airflowInstall,
  brokerNodeLoss,
  secretSources,
  secretsAge,
  singleHosts,
  databasePath,
  vipKeepalived,
  versions,
  postgresParameterNames,
  jumpPorts,
  identityFiles,
  backup,
];

/** Runs every rule; returns errors and warnings (unsorted). */
export function checkInventory(inv: Inventory, ctx: RuleContext): Diagnostic[] {
  return RULES.flatMap((rule) => rule(inv, ctx));
}
