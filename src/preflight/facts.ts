/**
 * The facts the preflight reads on each host (src/preflight/rules.ts decides on them). They are
 * gathered in the same round trip as the host facts at connect (src/run/execute.ts), before the
 * OS family is known, so every command works on both families (it asks for apt or dnf itself).
 * Every command is read-only: nothing is installed, loaded, started or refreshed.
 */
import { raw, sh } from '../core/cmd.js';
import { airflowMetadataGlob } from '../components/airflow.js';
import type { Fact } from '../facts/fact.js';
import type { OsFamily } from '../facts/host.js';

/** Seconds since the epoch on the host (`date +%s.%N`, GNU date(1)), NaN when unreadable. */
function epochFact(key: string): Fact<number> {
  return { key, cmd: raw('date +%s.%N'), parse: (stdout) => Number.parseFloat(stdout.trim()) };
}

/** The host's clock, read first in the fact script (see {@link clockEndFact}). */
export const clockStartFact = epochFact('preflight:clock-start');
/** The host's clock, read last: with the start, it bounds when the start was read (src/preflight/rules.ts clock rule). */
export const clockEndFact = epochFact('preflight:clock-end');

/** Memory and disk of a host, in KiB. */
export interface Capacity {
  /** `MemTotal` of /proc/meminfo (proc(5)); NaN when unreadable. */
  memKiB: number;
  /** Size of the file system holding /var (PostgreSQL, etcd and RabbitMQ data), `df -Pk` (POSIX df); NaN when unreadable. */
  diskKiB: number;
}

/** Fact: {@link Capacity}. */
export const capacityFact: Fact<Capacity> = {
  key: 'preflight:capacity',
  cmd: raw(`awk '/^MemTotal:/ {print $2}' /proc/meminfo; df -Pk /var | awk 'NR == 2 {print $2}'`),
  parse(stdout) {
    const [mem = '', disk = ''] = stdout.trim().split('\n');
    return { memKiB: Number.parseInt(mem, 10), diskKiB: Number.parseInt(disk, 10) };
  },
};

/** What the running kernel offers for NFS. */
export interface NfsSupport {
  /** File system types of /proc/filesystems (proc(5)) among `nfsd`, `nfs`, `nfs4`: registered by a loaded or built-in module. */
  filesystems: string[];
  /** Modules `modprobe -n` (dry run: nothing is loaded; kmod's modprobe(8)) finds for this kernel, among `nfsd`, `nfsv4`. */
  modules: string[];
  /** /proc/fs/nfsd is mounted: an NFS server already runs (a re-run). */
  nfsdMounted: boolean;
}

/**
 * Fact: {@link NfsSupport}. A container shares its host's kernel and cannot load modules, so there
 * only /proc/filesystems counts (src/preflight/rules.ts); on a VM a module `modprobe -n` finds is
 * loaded by the NFS units when they start.
 */
export const nfsSupportFact: Fact<NfsSupport> = {
  key: 'preflight:nfs',
  cmd: raw(
    `awk '$NF == "nfsd" || $NF == "nfs" || $NF == "nfs4" {print "fs " $NF}' /proc/filesystems; ` +
      `for m in nfsd nfsv4; do modprobe -nq "$m" 2>/dev/null && echo "module $m"; done; ` +
      `grep -qs ' /proc/fs/nfsd ' /proc/mounts && echo mounted`,
  ),
  parse(stdout) {
    const out: NfsSupport = { filesystems: [], modules: [], nfsdMounted: false };
    for (const line of stdout.split('\n')) {
      const [kind, name] = line.trim().split(' ');
      if (kind === 'fs' && name) out.filesystems.push(name);
      else if (kind === 'module' && name) out.modules.push(name);
      else if (kind === 'mounted') out.nfsdMounted = true;
    }
    return out;
  },
};

/** Python interpreters on the host: command -> version (`3.11.2`); absent when not on PATH. */
export type Pythons = Map<string, string>;

/** Fact: the versions of `names` (e.g. `python3`, `python3.11`) that are on PATH (`python -V`). */
export function pythonsFact(names: readonly string[]): Fact<Pythons> {
  return {
    key: `preflight:python:${names.join(',')}`,
    cmd: sh`for p in ${names}; do v=$("$p" -V 2>&1) && printf '%s %s\\n' "$p" "$v"; done`,
    parse(stdout) {
      const out: Pythons = new Map();
      for (const line of stdout.split('\n')) {
        const m = /^(\S+) Python (\d+\.\d+(?:\.\d+)?)/.exec(line.trim());
        if (m) out.set(m[1] as string, m[2] as string);
      }
      return out;
    },
  };
}

/** One TCP listener: its port and the names of the processes holding it (empty when not shown, e.g. a kernel socket). */
export interface Listener {
  address: string;
  port: number;
  processes: string[];
}

/** Parses `ss -Hltnp` (ss(8): -H no header, -l listening, -t TCP, -n numeric, -p processes). */
export function parseListeners(stdout: string): Listener[] {
  const out: Listener[] = [];
  for (const line of stdout.split('\n')) {
    const cols = line.trim().split(/\s+/);
    const local = cols[3];
    if (cols[0] !== 'LISTEN' || !local) continue;
    const i = local.lastIndexOf(':');
    const port = Number.parseInt(local.slice(i + 1), 10);
    if (!Number.isInteger(port)) continue;
    const processes = [...new Set([...line.matchAll(/\("([^"]+)",pid=/g)].map((m) => m[1] as string))];
    out.push({ address: local.slice(0, i), port, processes });
  }
  return out;
}

/** Fact: the host's TCP listeners (`ss -Hltnp`, run as root so that every process is named). */
export const listenersFact: Fact<Listener[]> = { key: 'preflight:listeners', cmd: sh`ss -Hltnp`, parse: parseListeners };

/** What the host's package manager offers for some package names, read from its local index only. */
export interface PackageOffers {
  /** The package manager found (`apt` or `dnf`), or undefined when neither is there. */
  manager?: 'apt' | 'dnf';
  /** False when there is no local index to read (apt: no package lists yet; dnf: no metadata cache). */
  indexed: boolean;
  /** Versions the configured repositories offer, by package name (apt: `1:26.2.5-1`, dnf: epoch dropped). */
  offered: Map<string, string[]>;
  /** Installed versions, by package name. */
  installed: Map<string, string>;
  /** Base URLs of the repositories the package manager reads (apt-cache policy; dnf .repo `baseurl`). */
  sources: string[];
}

/**
 * Fact: {@link PackageOffers} for `names` (per family: the names differ, e.g. `etcd-server` and
 * `etcd`). Debian: `apt-cache madison` (apt-cache(8): every version of the configured sources),
 * `dpkg-query -W`, the sources of `apt-cache policy`. RHEL: `dnf list --showduplicates` with
 * `--cacheonly` (dnf(8): no metadata download; a host without a cache reports `indexed: false`),
 * `rpm -q`, the `baseurl` lines of /etc/yum.repos.d. apt-cache runs with `Dir::Cache::pkgcache` and
 * `srcpkgcache` empty (apt.conf(5): no cache file), else it rewrites /var/cache/apt/*.bin.
 */
export function packageOffersFact(names: Readonly<Record<OsFamily, readonly string[]>>): Fact<PackageOffers> {
  const deb = [...names.debian].sort();
  const rpm = [...names.rhel].sort();
  const cmd = sh`if command -v apt-cache >/dev/null 2>&1; then
echo manager apt; echo lists $(ls /var/lib/apt/lists/ 2>/dev/null | grep -c '_Packages')
apt-cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= madison ${deb} 2>/dev/null | awk -F'|' '$3 ~ /Packages/ {gsub(/ /, "", $1); gsub(/ /, "", $2); print "offer " $1 " " $2}'
dpkg-query -W -f '\${Package} \${Status} \${Version}\\n' ${deb} 2>/dev/null | awk '$4 == "installed" {print "installed " $1 " " $5}'
apt-cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= policy 2>/dev/null | awk '$2 ~ /^[a-z]+:\\/\\// {print "source " $2}' | sort -u
elif command -v dnf >/dev/null 2>&1; then
echo manager dnf
echo lists $(ls -d /var/cache/dnf/*/repodata 2>/dev/null | grep -c .)
dnf -q --cacheonly list --showduplicates ${rpm} 2>/dev/null | awk 'NF == 3 && $1 ~ /\\./ {n = $1; sub(/\\.[^.]*$/, "", n); v = $2; sub(/^[0-9]+:/, "", v); print "offer " n " " v}'
rpm -q --qf 'installed %{NAME} %{VERSION}-%{RELEASE}\\n' ${rpm} 2>/dev/null | grep '^installed '
grep -hs '^baseurl' /etc/yum.repos.d/*.repo | sed 's/^baseurl *= */source /'
fi`;
  return {
    key: `preflight:packages:${deb.join(',')}:${rpm.join(',')}`,
    cmd,
    parse(stdout) {
      const out: PackageOffers = { indexed: false, offered: new Map(), installed: new Map(), sources: [] };
      for (const line of stdout.split('\n')) {
        const [kind, a = '', b = ''] = line.trim().split(/\s+/);
        if (kind === 'manager' && (a === 'apt' || a === 'dnf')) out.manager = a;
        else if (kind === 'lists') out.indexed = Number.parseInt(a, 10) > 0;
        else if (kind === 'offer' && a && b) out.offered.set(a, [...(out.offered.get(a) ?? []), b]);
        else if (kind === 'installed' && a && b) out.installed.set(a, b);
        else if (kind === 'source' && a) out.sources.push(a);
      }
      return out;
    },
  };
}

/**
 * Fact: the Airflow version installed behind the virtualenv link `venv` (`<home>/venv`), read from
 * the `Version:` line of its `apache_airflow-*.dist-info/METADATA` (the core metadata of an
 * installed distribution, https://packaging.python.org/en/latest/specifications/core-metadata/);
 * undefined when no Airflow is installed there. Works for a home of the versioned layout (a link to
 * `venv-<version>`) and for an older one (`venv` a folder).
 */
export function installedAirflowFact(venv: string): Fact<string | undefined> {
  return {
    key: `preflight:airflow-installed:${venv}`,
    cmd: sh`for m in ${raw(airflowMetadataGlob(venv))}; do [ -f "$m" ] && sed -n 's/^Version: //p' "$m"; done 2>/dev/null | head -n 1`,
    parse: (stdout) => stdout.trim() || undefined,
  };
}

/**
 * The scheme etcd serves its clients on, read from the first `ETCD_LISTEN_CLIENT_URLS` of the env
 * files given (the `envFile` of src/components/etcd.ts `etcdPaths` for each OS family; the variable:
 * https://etcd.io/docs/v3.4/op-guide/configuration/): `http`, `https`, or undefined when no
 * member is configured there yet (a new host).
 */
export function etcdSchemeFact(envFiles: readonly string[]): Fact<'http' | 'https' | undefined> {
  return {
    key: `preflight:etcd-scheme:${envFiles.join(',')}`,
    cmd: sh`sed -n -E ${'s/^ETCD_LISTEN_CLIENT_URLS="?([a-z]+):.*/\\1/p'} ${[...envFiles]} 2>/dev/null | head -n 1`,
    parse: (stdout) => {
      const s = stdout.trim();
      return s === 'http' || s === 'https' ? s : undefined;
    },
  };
}
