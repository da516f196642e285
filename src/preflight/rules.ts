/**
 * The preflight: before a run changes anything (before the run lock, before the first step), the
 * facts of every targeted host (src/preflight/facts.ts, read in the connect round trip) are checked
 * against what the run will ask of that host. Pure functions: facts in, findings out.
 *
 * A finding with severity `refuse` stops the run (exit 2, src/core/errors.ts PreflightError) before
 * any host is touched; `warn` is printed and the run goes on. `plan` shows both and refuses nothing.
 *
 * | rule                 | severity      | what                                                                   |
 * |----------------------|---------------|------------------------------------------------------------------------|
 * | `os`                 | refuse        | not Debian 12 or Rocky/RHEL 9 (AlmaLinux and CentOS Stream 9 pass as RHEL 9) |
 * | `nfs:server`         | refuse        | dags.mode nfs, an nfs host whose kernel has no nfsd                    |
 * | `nfs:client`         | refuse        | dags.mode nfs, an Airflow host whose kernel has no NFSv4 client        |
 * | `package:version`    | refuse / warn | a pinned version the configured repositories do not offer; warn when it cannot be checked yet |
 * | `python`             | refuse        | the Python of the Airflow virtualenv is older than the Airflow version needs |
 * | `airflow:installed`  | refuse        | the host runs another Airflow version than the inventory's: that is `upgrade`'s job |
 * | `tls:switch`         | refuse        | an etcd member serves another scheme than `cluster.tls` asks for: TLS cannot be turned on or off on a running cluster yet |
 * | `capacity:memory`    | warn          | less memory than seed 003's VM of the same roles                        |
 * | `capacity:disk`      | warn          | a smaller /var file system than seed 003's VM of the same roles         |
 * | `clock:skew`         | refuse        | the host's clock is more than 1 s off the other hosts' clocks           |
 * | `port:in-use`        | refuse        | a port a role needs is held by a program airflow-ha does not run there  |
 */
import { skewedHosts, type OffsetBound } from '../core/clock.js';
import type { OsRelease } from '../facts/host.js';
import type { Host, Inventory, Role } from '../inventory/schema.js';
import { AIRFLOW_ROLES, dagsMode, hostPortClaims } from '../inventory/rules.js';
import type { Capacity, Listener, NfsSupport, PackageOffers, Pythons } from './facts.js';
import type { Pin } from './pins.js';

/** One preflight finding on one host. */
export interface Finding {
  host: string;
  /** A short stable identifier, e.g. `nfs:server` (see the table above). */
  rule: string;
  severity: 'refuse' | 'warn';
  /** What is wrong, with the values read on the host. */
  message: string;
  /** What the operator can do about it. */
  fix: string;
}

/** Everything the preflight read on one host. Each field is absent when the run did not ask for it. */
export interface HostPreflightFacts {
  os: OsRelease;
  /** The host's clock offset from this machine's, bounded: seconds, `lo <= offset <= hi`. */
  clock?: OffsetBound;
  capacity?: Capacity;
  nfs?: NfsSupport;
  pythons?: Pythons;
  /** The Airflow version installed behind `<home>/venv`; null when none is (asked on Airflow hosts only). */
  airflowInstalled?: string | null;
  /** The scheme this etcd member serves its clients on; null when none is configured (asked on etcd hosts only). */
  etcdScheme?: 'http' | 'https' | null;
  listeners?: Listener[];
  packages?: PackageOffers;
}

/** One targeted host: its inventory entry, the roles this run sets up on it, its pins and facts. */
export interface PreflightHost {
  host: Host;
  /** The roles of the host that the run's steps set up (a `--playbook base` run sets up none). */
  roles: readonly Role[];
  /** The pinned packages the run installs on this host (src/preflight/pins.ts). */
  pins: readonly Pin[];
  facts: HostPreflightFacts;
}

/** The largest clock difference between hosts that is accepted, in seconds. */
export const MAX_CLOCK_SKEW_SEC = 1;

// ---------------------------------------------------------------------------------------------
// OS

/**
 * Rule `os`: Debian 12, or Rocky Linux / RHEL 9 (AlmaLinux and CentOS Stream 9 are the same
 * release and pass). The README's promise: both are what every component was written for.
 */
export function osRule(h: PreflightHost): Finding[] {
  const { osId, osVersion, family } = h.facts.os;
  const major = osVersion.split('.')[0];
  if (family === 'debian' && osId === 'debian' && major === '12') return [];
  if (family === 'rhel' && ['rocky', 'rhel', 'almalinux', 'centos'].includes(osId) && major === '9') return [];
  const what = osId ? `${osId} ${osVersion}`.trim() : 'an OS without /etc/os-release';
  return [
    {
      host: h.host.name,
      rule: 'os',
      severity: 'refuse',
      message: `unsupported OS ${what}: airflow-ha supports Debian 12 and Rocky Linux/RHEL 9`,
      fix: 'install Debian 12 or Rocky Linux 9 on this host (or take it out of the inventory)',
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// NFS

/**
 * Rules `nfs:server` and `nfs:client` (dags.mode nfs only): the nfs hosts need the kernel's NFS
 * server (`nfsd`), every Airflow host an NFSv4 client (`nfs4`, module `nfsv4`): the DAG folder is
 * mounted with `nfsvers=4.2`. Read-only tests: a file system type listed in /proc/filesystems is
 * registered (built in or its module loaded); on a VM a module `modprobe -n` finds will be loaded
 * when nfs-server.service or the mount starts. A container shares its host's kernel and may not
 * load modules, so there only /proc/filesystems counts.
 */
export function nfsRule(inv: Inventory, h: PreflightHost): Finding[] {
  const nfs = h.facts.nfs;
  if (dagsMode(inv) !== 'nfs' || !nfs) return [];
  const container = h.facts.os.container;
  const has = (fs: string, module: string) => nfs.filesystems.includes(fs) || (!container && nfs.modules.includes(module));
  const where = container ? "this container's kernel (the machine's own: a container cannot load modules)" : `this kernel`;
  const fix = 'set cluster.dags.mode: sync in the inventory (DAGs are shipped by `airflow-ha deploy-dags`, no NFS needed), or use a kernel with NFS support';
  const out: Finding[] = [];
  if (h.roles.includes('nfs') && !nfs.nfsdMounted && !has('nfsd', 'nfsd')) {
    out.push({ host: h.host.name, rule: 'nfs:server', severity: 'refuse', message: `dags.mode nfs needs an NFS server on this nfs host, but ${where} has no nfsd (not in /proc/filesystems${container ? '' : ', no module for modprobe'})`, fix });
  }
  if (h.roles.some((r) => AIRFLOW_ROLES.includes(r)) && !has('nfs4', 'nfsv4')) {
    out.push({ host: h.host.name, rule: 'nfs:client', severity: 'refuse', message: `dags.mode nfs mounts the DAG folder over NFSv4 on this Airflow host, but ${where} has no NFSv4 client (no nfs4 in /proc/filesystems${container ? '' : ', no nfsv4 module for modprobe'})`, fix });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pinned package versions

/**
 * Rule `package:version`: each pinned package (src/preflight/pins.ts) must be installed at its pin
 * already, or offered at a version the pin matches (a prefix, as `apt-get install name=pin*` and
 * `dnf install name-pin*` read it) by the repositories the host has now. When that cannot be known
 * yet it is a warning, not a refusal: a host without a package index (apt's lists are fetched by
 * the first package task), or kind `upstream` with the pin's repository not yet on the host (the
 * run adds it in the component's step, then installs; a missing version fails that step).
 */
export function packageRule(inv: Inventory, h: PreflightHost): Finding[] {
  const p = h.facts.packages;
  if (!p || h.pins.length === 0) return [];
  const out: Finding[] = [];
  const upstream = inv.cluster.packages.kind === 'upstream';
  for (const pin of h.pins) {
    const installed = p.installed.get(pin.name);
    if (installed !== undefined && (pin.version === undefined || installed.startsWith(pin.version))) continue;
    const what = pin.version === undefined ? `package ${pin.name} (cluster.versions.${pin.setting} ${inv.cluster.versions[pin.setting] ?? ''})` : `${pin.name} ${pin.version} (cluster.versions.${pin.setting})`;
    const offered = p.offered.get(pin.name) ?? [];
    if (offered.some((v) => pin.version === undefined || v.startsWith(pin.version))) continue;
    const base = { host: h.host.name, rule: 'package:version' };
    if (!p.manager) {
      out.push({ ...base, severity: 'warn', message: `${what} not checked: neither apt nor dnf is on this host`, fix: 'check the OS (see the rule os)' });
      continue;
    }
    if (!p.indexed) {
      out.push({ ...base, severity: 'warn', message: `${what} not checked: the host has no package index yet (${p.manager === 'apt' ? 'apt lists' : 'dnf metadata cache'})`, fix: `run \`${p.manager === 'apt' ? 'apt-get update' : 'dnf makecache'}\` on the host and plan again; the run fails at the package step if the version is missing` });
      continue;
    }
    if (upstream && pin.source && !p.sources.some((s) => s.startsWith(pin.source as string))) {
      out.push({ ...base, severity: 'warn', message: `${what} not checked yet: its repository ${pin.source} is added by the run itself`, fix: `make sure ${pin.source} (or your mirror, cluster.packages.mirrors) offers it; the run fails at the package step if it does not` });
      continue;
    }
    const list = offered.length === 0 ? 'none' : offered.slice(0, 5).join(', ') + (offered.length > 5 ? `, ... (${offered.length})` : '');
    out.push({
      ...base,
      severity: 'refuse',
      message: `${what} is not offered by the repositories configured on this host (offered: ${list})`,
      fix: pin.version === undefined
        ? `use a cluster.versions.${pin.setting} the repositories have, or add a repository that has ${pin.name} (cluster.packages)`
        : `set cluster.versions.${pin.setting} to an offered version, or add a repository that has ${pin.version} (cluster.packages kind upstream, or a mirror)`,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Python

/**
 * The oldest Python each Airflow major accepts. Airflow 2.9-2.11: 3.8 (the prerequisites page,
 * https://airflow.apache.org/docs/apache-airflow/2.8.2/installation/prerequisites.html lists
 * "Python: 3.8, 3.9, 3.10, 3.11", and Airflow's README for 2.9.3 and 2.10.0 "3.8, 3.9, 3.10,
 * 3.11, 3.12", apache/airflow#40944). Airflow 3: 3.9 (apache/airflow#42766 set `requires-python
 * >=3.9` on main, cited in #43560; https://airflow.apache.org/docs/apache-airflow/stable/installation/prerequisites.html);
 * Airflow 3.3 and later: 3.10 (Airflow's README at 3.3.0, apache/airflow#69480: "Stable version
 * (3.3.0) ... Python 3.10, 3.11, 3.12, 3.13, 3.14"). Where 3.1 and 3.2 start was not verified: they
 * keep 3.9, and pip refuses an interpreter the release does not accept anyway.
 */
export function minimumPython(airflowVersion: string): string {
  const [major, minor] = airflowVersion.split('.').map(Number) as [number, number];
  if (major >= 3 && minor >= 3) return '3.10';
  return major >= 3 ? '3.9' : '3.8';
}

/** `a < b` for dotted versions (`3.8` < `3.11`). */
export function versionBelow(a: string, b: string): boolean {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d < 0;
  }
  return false;
}

/**
 * Rule `python`: on an Airflow host the virtualenv is made by `interpreter` (`python3.11`, installed
 * from the OS's packages when missing: src/components/airflow.ts); when it, or else the host's
 * `python3`, is older than {@link minimumPython}, pip cannot install the pinned Airflow.
 */
export function pythonRule(inv: Inventory, h: PreflightHost, interpreter: string): Finding[] {
  const pythons = h.facts.pythons;
  if (!pythons || !h.roles.some((r) => AIRFLOW_ROLES.includes(r))) return [];
  const [cmd, version] = pythons.has(interpreter) ? [interpreter, pythons.get(interpreter) as string] : ['python3', pythons.get('python3')];
  const airflow = inv.cluster.versions.airflow;
  const min = minimumPython(airflow);
  if (version === undefined || !versionBelow(version, min)) return [];
  return [
    {
      host: h.host.name,
      rule: 'python',
      severity: 'refuse',
      message: `Airflow ${airflow} needs Python ${min} or newer; this host's ${cmd} is ${version}`,
      fix: `install ${interpreter} (Debian 12's python3, Rocky/RHEL 9's python3.11 package) or use a supported OS`,
    },
  ];
}

/**
 * Rule `airflow:installed`: an Airflow host already runs a version other than
 * `cluster.versions.airflow` (whose default, when the inventory sets none, is the newest Airflow 3:
 * an inventory of a 2.x cluster that never pinned its version now asks for 3.x). A bootstrap or
 * apply would install the other version beside it and restart the services on it without pausing
 * the schedulers, draining the workers or migrating the database once: a change of version is
 * `airflow-ha upgrade` (src/cli/upgrade.ts), which does those in order. So the run is refused
 * before anything changes, with the two ways out.
 */
export function installedAirflowRule(inv: Inventory, h: PreflightHost): Finding[] {
  const installed = h.facts.airflowInstalled;
  const wanted = inv.cluster.versions.airflow;
  if (!installed || installed === wanted || !h.roles.some((r) => AIRFLOW_ROLES.includes(r))) return [];
  return [
    {
      host: h.host.name,
      rule: 'airflow:installed',
      severity: 'refuse',
      message: `this host runs Airflow ${installed}; the inventory asks for ${wanted} (cluster.versions.airflow; when it is not set, the default is the newest Airflow 3), and a re-run does not change Airflow's version`,
      fix: `to keep ${installed}, set cluster.versions.airflow: "${installed}" in the inventory; to move to ${wanted}, run \`airflow-ha upgrade -i FILE --to ${wanted}\` (it pauses, drains, migrates once and rolls the services)`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// TLS on a running cluster

/**
 * Rule `tls:switch`: an etcd member already serves its clients over another scheme than
 * `cluster.tls.enabled` asks for. Applying it would restart the etcd members onto the new scheme
 * one at a time while the others and Patroni still speak the old one (Patroni would lose its DCS
 * and demote the leader), switch PostgreSQL's pg_hba and RabbitMQ's listener before their clients,
 * and change Patroni's REST API under HAProxy's checks: a rolling switch needs the stages a
 * `bootstrap` does not have yet (README "TLS"). So the run is refused before anything changes.
 */
export function tlsSwitchRule(inv: Inventory, h: PreflightHost): Finding[] {
  const running = h.facts.etcdScheme;
  const wanted = inv.cluster.tls.enabled ? 'https' : 'http';
  if (!running || running === wanted || !h.roles.includes('etcd')) return [];
  const on = wanted === 'https';
  return [
    {
      host: h.host.name,
      rule: 'tls:switch',
      severity: 'refuse',
      message: `this etcd member serves ${running}:// (ETCD_LISTEN_CLIENT_URLS) and the inventory ${on ? 'turns cluster.tls on' : 'has cluster.tls off'}: turning TLS ${on ? 'on' : 'off'} for a running cluster is not a rolling change yet, and this run would cut etcd's quorum and Patroni's DCS`,
      fix: on
        ? 'keep cluster.tls.enabled: false for this cluster: TLS is set up by a cluster\'s first bootstrap'
        : 'set cluster.tls.enabled: true back in the inventory (the state folder keeps its CA and certificates)',
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Memory and disk

/**
 * Memory and disk of the seed's VMs (seed 003's table, GiB) by role: the smallest VM that carries the
 * role. A host's floor is the largest of its roles' (seed 003 puts scheduler, webserver, HAProxy
 * and Flower on one 4 GB VM; seed 000's small tier keeps everything on one VM): colocated roles
 * share the VM, they are not summed. The triggerer, not in the table, runs on the scheduler hosts.
 */
const SQL_VM = { memGiB: 4, diskGiB: 20 }; // sql1-3, airflow (VM1), haproxy2
const SMALL_VM = { memGiB: 2, diskGiB: 15 }; // scheduler2, ftp, nfs2, worker1
const MQ_VM = { memGiB: 2, diskGiB: 10 }; // mq1-3
const TARGET_VM = { memGiB: 1, diskGiB: 10 }; // card1
export const ROLE_FLOORS: Readonly<Record<Role, { memGiB: number; diskGiB: number }>> = {
  etcd: SQL_VM, postgresql: SQL_VM, haproxy: SQL_VM, webserver: SQL_VM, flower: SQL_VM,
  scheduler: SMALL_VM, triggerer: SMALL_VM, dag_processor: SMALL_VM, nfs: SMALL_VM, ftp: SMALL_VM, worker: SMALL_VM,
  rabbitmq: MQ_VM,
  target: TARGET_VM,
  // Not in the seed: the pgBackRest repository holds a few full backups of the database, so its disk
  // is sized like a database host's (more with a long retention).
  backup: { memGiB: 1, diskGiB: 20 },
  // Not in seed 003's table: Prometheus's own guidance is disk for its retention; the small VM's floor.
  monitoring: SMALL_VM,
};

/**
 * A VM of N GiB shows less: the kernel keeps some memory out of MemTotal and the file system some
 * of the disk. Below this share of the floor is a warning.
 */
export const CAPACITY_TOLERANCE = 0.9;

/**
 * Rules `capacity:memory` and `capacity:disk` (warnings only: the seed's sizes are what the
 * customer planned, not a measured minimum; a smaller test VM may well run).
 */
export function capacityRule(h: PreflightHost): Finding[] {
  const cap = h.facts.capacity;
  if (!cap || h.roles.length === 0) return [];
  const memFloor = Math.max(...h.roles.map((r) => ROLE_FLOORS[r].memGiB));
  const diskFloor = Math.max(...h.roles.map((r) => ROLE_FLOORS[r].diskGiB));
  const roles = h.roles.join(', ');
  const gib = (kib: number) => (kib / 1024 / 1024).toFixed(1);
  const out: Finding[] = [];
  const base = { host: h.host.name, severity: 'warn' as const };
  if (cap.memKiB < memFloor * CAPACITY_TOLERANCE * 1024 * 1024) {
    out.push({ ...base, rule: 'capacity:memory', message: `${gib(cap.memKiB)} GiB of memory, below the ${memFloor} GiB seed 003 gives a VM with ${roles}`, fix: `give the VM ${memFloor} GiB or more` });
  }
  if (cap.diskKiB < diskFloor * CAPACITY_TOLERANCE * 1024 * 1024) {
    out.push({ ...base, rule: 'capacity:disk', message: `${gib(cap.diskKiB)} GiB file system at /var, below the ${diskFloor} GiB seed 003 gives a VM with ${roles}`, fix: `grow the disk to ${diskFloor} GiB or more` });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Clock skew

/**
 * The host's clock offset from this machine's, bounded by what one round trip can tell: the host
 * read its clock at `start` (first fact) and `end` (last fact), and the round trip ran from `sentAt`
 * to `receivedAt` here (all seconds since the epoch). The first reading happened between `sentAt`
 * and `receivedAt - (end - start)`, so the offset lies in `[end - receivedAt, start - sentAt]`.
 */
export function clockOffset(start: number, end: number, sentAt: number, receivedAt: number): { lo: number; hi: number } | undefined {
  if (![start, end, sentAt, receivedAt].every(Number.isFinite)) return undefined;
  return { lo: end - receivedAt, hi: start - sentAt };
}

/**
 * Rule `clock:skew`: etcd, Patroni's leader lease and Airflow's scheduler heartbeats assume the
 * hosts agree on the time. A host is named when its clock is surely more than
 * {@link MAX_CLOCK_SKEW_SEC} off most other hosts' (with two hosts, or no majority, both of a pair).
 */
export function clockRule(hosts: readonly PreflightHost[]): Finding[] {
  const timed = hosts.flatMap((h) => (h.facts.clock ? [{ name: h.host.name, bound: h.facts.clock }] : []));
  return skewedHosts(timed, MAX_CLOCK_SKEW_SEC).map(({ name, others }) => {
    const worst = others.reduce((a, b) => (b.skew > a.skew ? b : a));
    return {
      host: name,
      rule: 'clock:skew',
      severity: 'refuse' as const,
      message: `its clock is at least ${worst.skew.toFixed(1)} s off ${others.map((o) => o.other).join(', ')} (at most ${MAX_CLOCK_SKEW_SEC} s is accepted)`,
      fix: 'set the clock from NTP (e.g. `chronyc makestep`, or `timedatectl set-ntp true`) and run again',
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Ports

/**
 * The programs airflow-ha runs for each role, as `ss -p` names them (the kernel's 15-character
 * `comm`): a port held by one of the host's own is a running cluster (a re-run), not a conflict.
 * Airflow's services show as `airflow`, `gunicorn` (its webserver), `celery`, or the Python that
 * runs them; rpcbind may be held by systemd's rpcbind.socket, and epmd's port by systemd's
 * epmd.socket (Debian's erlang-base activates epmd by socket); nfsd's port belongs to the kernel (no
 * process: never a finding).
 */
export const ROLE_PROGRAMS: Readonly<Record<Role, readonly string[]>> = {
  etcd: ['etcd'],
  // postgres_exporter of a monitored cluster (Debian's /usr/bin/prometheus-postgres-exporter, comm cut at 15).
  postgresql: ['postgres', 'patroni', 'prometheus-post'],
  haproxy: ['haproxy'],
  rabbitmq: ['beam.smp', 'epmd', 'erl_child_setup', 'inet_gethost', 'systemd'],
  scheduler: ['airflow', 'python'],
  triggerer: ['airflow', 'python'],
  webserver: ['airflow', 'gunicorn', 'python', '[ready] gunicorn'],
  dag_processor: ['airflow', 'python'],
  worker: ['airflow', 'celery', 'python'],
  flower: ['airflow', 'celery', 'flower', 'python'],
  nfs: ['rpcbind', 'rsync', 'systemd', 'rpc.mountd', 'rpc.statd'],
  ftp: ['vsftpd'],
  target: [],
  backup: [],
  monitoring: ['prometheus', 'prometheus-aler'],
};

/** Whether `process` is one of `programs` (`python` also matches `python3.11`, `airflow` `airflow schedul`). */
function isOwn(process: string, programs: readonly string[]): boolean {
  return programs.some((p) => process === p || ((p === 'python' || p === 'airflow') && process.startsWith(p)));
}

/**
 * Rule `port:in-use`: a port (or a port of a range) one of the run's roles listens on
 * (src/inventory/rules.ts hostPortClaims) is held by a program that is none of the programs
 * airflow-ha runs on this host ({@link ROLE_PROGRAMS} of every role of the host, and sshd).
 */
export function portRule(inv: Inventory, h: PreflightHost): Finding[] {
  const listeners = h.facts.listeners;
  if (!listeners || h.roles.length === 0) return [];
  const own = [...new Set(['sshd', ...h.host.roles.flatMap((r) => ROLE_PROGRAMS[r])])];
  const claims = hostPortClaims(h.host, inv).filter((c) => c.role !== 'ssh' && h.roles.includes(c.role as Role));
  const out: Finding[] = [];
  const seen = new Set<number>();
  for (const l of listeners) {
    if (seen.has(l.port) || l.processes.length === 0) continue;
    const claim = claims.find((c) => l.port >= c.from && l.port <= c.to);
    const strangers = l.processes.filter((p) => !isOwn(p, own));
    if (!claim || strangers.length === 0) continue;
    seen.add(l.port);
    const what = claim.from === claim.to ? `port ${l.port}` : `port ${l.port} (in ${claim.label} ${claim.from}-${claim.to})`;
    out.push({
      host: h.host.name,
      rule: 'port:in-use',
      severity: 'refuse',
      message: `${claim.role} needs ${what}, but ${strangers.join(', ')} listens on it (${l.address}:${l.port})`,
      fix: `stop and disable ${strangers.join(', ')} on this host${claim.setting ? `, or move ${claim.role}'s port with cluster.ports.${claim.setting}` : ''}`,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Every rule on every host, in host order (clock findings last). */
export function preflight(inv: Inventory, hosts: readonly PreflightHost[], opts: { interpreter: string }): Finding[] {
  const perHost = hosts.flatMap((h) => {
    const os = osRule(h);
    // The other rules read facts that mean nothing on an unsupported OS.
    if (os.length > 0) return os;
    return [...nfsRule(inv, h), ...packageRule(inv, h), ...pythonRule(inv, h, opts.interpreter), ...installedAirflowRule(inv, h), ...tlsSwitchRule(inv, h), ...portRule(inv, h), ...capacityRule(h)];
  });
  return [...perHost, ...clockRule(hosts)];
}

