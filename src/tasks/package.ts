import { sh } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import type { HostFacts } from '../facts/host.js';
import type { Task, TaskPlan } from './task.js';

/** Installed packages: name -> version (absent names are missing). */
export type InstalledPackages = Map<string, string>;

/**
 * Fact: which of `names` are installed and at which version, in one command.
 * Debian: `dpkg-query -W` (man dpkg-query), only packages whose status is `install ok installed`;
 * RHEL: `rpm -q --qf` (man rpm), version as VERSION-RELEASE.
 */
export function packagesFact(family: HostFacts['family'], names: readonly string[]): Fact<InstalledPackages> {
  const sorted = [...names].sort();
  const cmd =
    family === 'debian'
      ? sh`dpkg-query -W -f '\${Package}\\t\${Status}\\t\${Version}\\n' ${sorted}`
      : sh`rpm -q --qf '%{NAME}\\tinstall ok installed\\t%{VERSION}-%{RELEASE}\\n' ${sorted}`;
  return {
    key: `packages:${family}:${sorted.join(',')}`,
    cmd,
    parse(stdout) {
      const out: InstalledPackages = new Map();
      for (const line of stdout.split('\n')) {
        const [name, status, version] = line.split('\t');
        if (name && status === 'install ok installed' && version) out.set(name, version);
      }
      return out;
    },
  };
}

/** Fact (Debian): whether apt has package lists at all (a fresh host needs `apt-get update` once). */
export const aptListsFact: Fact<boolean> = {
  key: 'apt-lists',
  cmd: sh`ls /var/lib/apt/lists/ 2>/dev/null | grep -c '_Packages$'`,
  parse: (stdout) => Number.parseInt(stdout.trim(), 10) > 0,
};

/** Desired packages. `versions` pins some (prefix match on the installed version); pinned ones are held. */
export interface PackageSpec {
  names: readonly string[];
  state?: 'present' | 'absent';
  versions?: Readonly<Record<string, string>>;
}

/**
 * Task: packages present (optionally pinned and held, so a re-run or an unrelated upgrade never moves
 * them) or absent. Never upgrades an installed package whose version matches its pin.
 */
export function packages(spec: PackageSpec): Task {
  const state = spec.state ?? 'present';
  const versions = spec.versions ?? {};
  return {
    name: `packages ${state} ${spec.names.join(' ')}`,
    facts: (host) => [packagesFact(host.family, spec.names), ...(host.family === 'debian' ? [aptListsFact] : [])],
    plan(facts, host): TaskPlan {
      const installed = facts.get(packagesFact(host.family, spec.names));
      if (state === 'absent') {
        const remove = spec.names.filter((n) => installed.has(n));
        if (remove.length === 0) return { changed: false, ops: [], changes: [], notify: [] };
        const cmd =
          host.family === 'debian'
            ? sh`DEBIAN_FRONTEND=noninteractive apt-get remove -y -q ${remove}`
            : sh`dnf remove -y -q ${remove}`;
        return { changed: true, ops: [exec(cmd)], changes: remove.map((n) => `remove ${n}`), notify: [] };
      }
      const wanted = spec.names.filter((n) => {
        const have = installed.get(n);
        const pin = versions[n];
        return have === undefined || (pin !== undefined && !have.startsWith(pin));
      });
      if (wanted.length === 0) return { changed: false, ops: [], changes: [], notify: [] };
      const args = wanted.map((n) => {
        const pin = versions[n];
        if (pin === undefined) return n;
        return host.family === 'debian' ? `${n}=${pin}*` : `${n}-${pin}*`;
      });
      const pinned = wanted.filter((n) => versions[n] !== undefined);
      const ops = [];
      if (host.family === 'debian') {
        if (!facts.get(aptListsFact)) ops.push(exec(sh`apt-get update -q`));
        ops.push(
          exec(
            sh`DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${args}`,
          ),
        );
        if (pinned.length) ops.push(exec(sh`apt-mark hold ${pinned}`));
      } else {
        ops.push(exec(sh`dnf install -y -q ${args}`));
        if (pinned.length) ops.push(exec(sh`dnf versionlock add ${pinned}`));
      }
      return {
        changed: true,
        ops,
        changes: wanted.map((n) => `install ${n}${versions[n] ? ` ${versions[n]}` : ''}${installed.has(n) ? ` (was ${installed.get(n)})` : ''}`),
        notify: [],
      };
    },
  };
}
