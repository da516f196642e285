import { sh } from '../core/cmd.js';
import type { Secret } from '../core/secret.js';
import { exec, type Op } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import { pathFact, sha256, unifiedDiff } from './file.js';
import type { Task, TaskPlan } from './task.js';

/** A passwd entry as `getent passwd` prints it (man 5 passwd), plus supplementary groups (`id -nG`). */
export interface UserState {
  exists: boolean;
  uid?: number;
  home?: string;
  shell?: string;
  groups?: string[];
}

/** Fact: the user `name`. */
export function userFact(name: string): Fact<UserState> {
  return {
    key: `user:${name}`,
    cmd: sh`getent passwd ${name} && id -nG ${name}`,
    parse(stdout, code) {
      if (code !== 0) return { exists: false };
      const [line = '', groups = ''] = stdout.split('\n');
      const f = line.split(':');
      return { exists: true, uid: Number(f[2]), home: f[5], shell: f[6], groups: groups.trim().split(/\s+/).filter(Boolean) };
    },
  };
}

/** Fact: whether group `name` exists (`getent group`). */
export function groupFact(name: string): Fact<boolean> {
  return { key: `group:${name}`, cmd: sh`getent group ${name}`, parse: (_s, code) => code === 0 };
}

/** Desired group. */
export interface GroupSpec {
  name: string;
  system?: boolean;
}

/** Task: a group exists. */
export function group(spec: GroupSpec): Task {
  const fact = groupFact(spec.name);
  return {
    name: `group ${spec.name}`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      if (facts.get(fact)) return { changed: false, ops: [], changes: [], notify: [] };
      const cmd = spec.system ? sh`groupadd --system ${spec.name}` : sh`groupadd ${spec.name}`;
      return { changed: true, ops: [exec(cmd)], changes: [`create group ${spec.name}`], notify: [] };
    },
  };
}

/** Desired user. No password is ever set (login by SSH key only). */
export interface UserSpec {
  name: string;
  system?: boolean;
  home?: string;
  shell?: string;
  /** Primary group (must exist; create it with {@link group} first). Default: a new group named like the user. */
  primaryGroup?: string;
  /** Supplementary groups the user must be in (others are left alone). */
  groups?: readonly string[];
}

/** Task: a user exists with home, shell and (at least) the given supplementary groups. */
export function user(spec: UserSpec): Task {
  const fact = userFact(spec.name);
  const shell = spec.shell ?? (spec.system ? '/usr/sbin/nologin' : '/bin/bash');
  return {
    name: `user ${spec.name}`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      const ops: Op[] = [];
      const changes: string[] = [];
      if (!cur.exists) {
        const home = spec.home ?? (spec.system ? `/var/lib/${spec.name}` : `/home/${spec.name}`);
        const groups = spec.groups?.length ? sh` --groups ${spec.groups.join(',')}` : sh``;
        const sys = spec.system ? sh` --system` : sh``;
        const gid = spec.primaryGroup ? sh` --gid ${spec.primaryGroup}` : sh``;
        ops.push(exec(sh`useradd${sys} --create-home --home-dir ${home} --shell ${shell}${gid}${groups} ${spec.name}`));
        changes.push(`create user ${spec.name}`);
      } else {
        if (spec.shell && cur.shell !== spec.shell) {
          ops.push(exec(sh`usermod --shell ${spec.shell} ${spec.name}`));
          changes.push(`set shell of ${spec.name} to ${spec.shell} (was ${cur.shell})`);
        }
        if (spec.home && cur.home !== spec.home) {
          ops.push(exec(sh`usermod --home ${spec.home} ${spec.name}`));
          changes.push(`set home of ${spec.name} to ${spec.home} (was ${cur.home})`);
        }
        const missing = (spec.groups ?? []).filter((g) => !(cur.groups ?? []).includes(g));
        if (missing.length) {
          ops.push(exec(sh`usermod --append --groups ${missing.join(',')} ${spec.name}`));
          changes.push(`add ${spec.name} to ${missing.join(', ')}`);
        }
      }
      return { changed: ops.length > 0, ops, changes, notify: [] };
    },
  };
}

/** Fact: current kernel values of sysctl keys (`sysctl -n`, man 8 sysctl); a missing key reads as undefined. */
export function sysctlFact(keys: readonly string[]): Fact<Map<string, string | undefined>> {
  const sorted = [...keys].sort();
  return {
    key: `sysctl:${sorted.join(',')}`,
    cmd: sh`for k in ${sorted}; do printf '%s=%s\\n' "$k" "$(sysctl -n "$k" 2>/dev/null | tr '\\t' ' ')"; done`,
    parse(stdout) {
      const out = new Map<string, string | undefined>();
      for (const line of stdout.split('\n')) {
        const i = line.indexOf('=');
        if (i > 0) out.set(line.slice(0, i), line.slice(i + 1) || undefined);
      }
      return out;
    },
  };
}

/** Desired kernel parameters, persisted in one file under /etc/sysctl.d/ and applied at once. */
export interface SysctlSpec {
  /** File name under /etc/sysctl.d/, e.g. `60-airflow-ha.conf`. */
  file: string;
  values: Readonly<Record<string, string>>;
}

/** Task: kernel parameters set now (`sysctl -w`) and at boot (the file). */
export function sysctl(spec: SysctlSpec): Task {
  const path = `/etc/sysctl.d/${spec.file}`;
  const keys = Object.keys(spec.values).sort();
  const content = Buffer.from(`# Managed by airflow-ha\n${keys.map((k) => `${k} = ${spec.values[k]}\n`).join('')}`);
  const digest = sha256(content);
  const fileF = pathFact(path, digest);
  const liveF = sysctlFact(keys);
  return {
    name: `sysctl ${keys.join(' ')}`,
    facts: () => [fileF, liveF],
    files: () => [{ path, content, mode: '0644', owner: 'root', group: 'root' }],
    plan(facts): TaskPlan {
      const cur = facts.get(fileF);
      const live = facts.get(liveF);
      const ops: Op[] = [];
      const changes: string[] = [];
      let diff: string | undefined;
      if (!cur.exists || cur.sha256 !== digest) {
        ops.push({ kind: 'put', path, content, mode: '0644', owner: 'root', group: 'root' });
        diff = unifiedDiff(path, cur.exists ? cur.content : undefined, content);
        changes.push(`${cur.exists ? 'update' : 'create'} ${path}`);
      }
      const norm = (v: string | undefined) => v?.trim().split(/\s+/).join(' ');
      const differ = keys.filter((k) => norm(live.get(k)) !== norm(spec.values[k]));
      if (differ.length) {
        ops.push(exec(sh`sysctl -q -w ${differ.map((k) => `${k}=${spec.values[k]}`)}`));
        changes.push(...differ.map((k) => `set ${k} = ${spec.values[k]} (was ${live.get(k) ?? 'unset'})`));
      }
      return { changed: ops.length > 0, ops, diff, changes, notify: [] };
    },
  };
}

/** Fact: the password field of `name` in /etc/shadow (`getent shadow`, man 5 shadow); undefined when there is no entry. */
export function shadowHashFact(name: string): Fact<string | undefined> {
  return {
    key: `shadow:${name}`,
    cmd: sh`getent shadow ${name} | cut -d: -f2`,
    parse: (stdout) => stdout.trim() || undefined,
  };
}

/** Desired password of an existing user, given as a crypt(3) hash (e.g. from `sha512Crypt`). */
export interface PasswordSpec {
  user: string;
  /** The hash as /etc/shadow holds it, `$6$salt$...`. Never the clear text. */
  hash: Secret;
}

/**
 * Task: the user's /etc/shadow hash is `hash`. A change writes `user:hash` to a root-only temp file
 * and feeds it to `chpasswd -e` on stdin (man chpasswd), so neither the password nor its hash is on
 * a command line; the temp file is removed whatever the outcome. Compared by the hash itself, so a
 * deterministic salt makes a re-run a no-op.
 */
export function password(spec: PasswordSpec): Task {
  const fact = shadowHashFact(spec.user);
  const tmp = `/root/.airflow-ha-chpasswd-${spec.user}`;
  return {
    name: `password of ${spec.user}`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      if (facts.get(fact) === spec.hash.reveal()) return { changed: false, ops: [], changes: [], notify: [] };
      return {
        changed: true,
        ops: [
          { kind: 'put', path: tmp, content: Buffer.from(`${spec.user}:${spec.hash.reveal()}\n`), mode: '0600', owner: 'root', group: 'root' },
          exec(sh`chpasswd -e < ${tmp}; rc=$?; rm -f ${tmp}; exit "$rc"`),
        ],
        changes: [`set the password of ${spec.user}`],
        notify: [],
      };
    },
  };
}
