/**
 * SELinux, kept enforcing (Rocky/RHEL 9): booleans, port labels and file labels, each read first
 * and changed only where it differs. The reasons for each boolean and port are in the components
 * that ask for them (haproxy, keepalived, rabbitmq) and in README "Rocky/RHEL".
 *
 * Sources: getsebool(8), setsebool(8) (`-P` writes the policy store, so the value survives a
 * reboot), semanage-port(8) (`-a` adds a record, `-m` modifies an existing one; `-l` lists
 * `TYPE PROTO PORTS` with ports comma-separated, ranges as `FROM-TO`), restorecon(8).
 */
import { Cmd, sh } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import type { Task, TaskPlan } from './task.js';

/** What the host's SELinux reports. */
export interface SelinuxState {
  /**
   * `getenforce`'s answer (`Enforcing`, `Permissive`, `Disabled`), `absent` when the SELinux tools
   * are not installed, or `unknown` when the fact printed nothing (its command could not run):
   * then every wanted setting is planned, and its command fails loudly instead of being skipped.
   */
  mode: 'Enforcing' | 'Permissive' | 'Disabled' | 'absent' | 'unknown';
  /** Boolean name -> current value; names the policy does not define are absent. */
  booleans: Map<string, boolean>;
  /** Every port record of `semanage port -l` (policy and local ones). */
  ports: PortRecord[];
}

/** One port record: a type and the protocol's port or range. */
export interface PortRecord {
  type: string;
  proto: string;
  from: number;
  to: number;
}

/** Whether SELinux settings can be read and written (enabled in either mode, or unknown). */
export function selinuxActive(s: SelinuxState): boolean {
  return s.mode === 'Enforcing' || s.mode === 'Permissive' || s.mode === 'unknown';
}

/** Parses `getsebool NAME` lines (`haproxy_connect_any --> off`). Other lines are ignored. */
export function parseGetsebool(text: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of text.split('\n')) {
    const m = /^(\S+) --> (on|off)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2] === 'on');
  }
  return out;
}

/**
 * Parses `semanage port -l` (`-n` drops the heading): `TYPE  PROTO  PORT[, PORT|FROM-TO]...`.
 * Example line: `amqp_port_t   tcp   15671-15672, 5671-5672`.
 */
export function parseSemanagePorts(text: string): PortRecord[] {
  const out: PortRecord[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+_t)\s+(tcp|udp|sctp|dccp)\s+(.+)$/.exec(line.trim());
    if (!m) continue;
    for (const item of m[3]!.split(',')) {
      const r = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(item);
      if (r) out.push({ type: m[1]!, proto: m[2]!, from: Number(r[1]), to: Number(r[2] ?? r[1]) });
    }
  }
  return out;
}

/**
 * The type the kernel gives `port`: the most specific record that covers it (the policy compiler
 * orders port records from the narrowest range), or undefined for an unlabeled port
 * (`unreserved_port_t` / `reserved_port_t` by default).
 */
export function portType(records: readonly PortRecord[], proto: string, port: number): string | undefined {
  const covering = records.filter((r) => r.proto === proto && r.from <= port && port <= r.to);
  covering.sort((a, b) => a.to - a.from - (b.to - b.from));
  return covering[0]?.type;
}

/**
 * Fact: SELinux mode, the named booleans, and (with `ports`) every port record. One shell command;
 * `semanage port -l` (about a second: it loads the policy store in Python) runs only when asked.
 */
export function selinuxFact(booleans: readonly string[], ports: boolean): Fact<SelinuxState> {
  const names = [...booleans].sort();
  // One getsebool per name: it stops at the first name the policy does not define.
  const bools = Cmd.join(names.map((n) => sh`getsebool ${n} 2>/dev/null; `), '');
  const portList = ports ? sh`echo '--ports'; semanage port -l -n 2>/dev/null; ` : sh``;
  return {
    key: `selinux:${names.join(',')}:${ports ? 'ports' : ''}`,
    cmd: sh`if command -v getenforce >/dev/null 2>&1; then echo "mode=$(getenforce)"; ${bools}${portList}else echo mode=absent; fi`,
    parse(stdout) {
      const first = stdout.split('\n', 1)[0] ?? '';
      const m = /^mode=(Enforcing|Permissive|Disabled|absent)$/.exec(first.trim());
      const cut = stdout.indexOf('\n--ports\n');
      return {
        mode: m ? (m[1] as SelinuxState['mode']) : 'unknown',
        booleans: parseGetsebool(cut < 0 ? stdout : stdout.slice(0, cut)),
        ports: cut < 0 ? [] : parseSemanagePorts(stdout.slice(cut + 9)),
      };
    },
  };
}

/**
 * Task: SELinux booleans set persistently (`setsebool -P NAME=on ...`, one command for all that
 * differ). No-op where SELinux is disabled or not installed (there is no policy to change).
 */
export function selinuxBooleans(wanted: Readonly<Record<string, boolean>>): Task {
  const names = Object.keys(wanted).sort();
  const fact = selinuxFact(names, false);
  return {
    name: `selinux booleans ${names.map((n) => `${n}=${wanted[n] ? 'on' : 'off'}`).join(' ')}`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      if (!selinuxActive(cur)) return { changed: false, ops: [], changes: [], notify: [] };
      const differ = names.filter((n) => cur.booleans.get(n) !== wanted[n]);
      if (differ.length === 0) return { changed: false, ops: [], changes: [], notify: [] };
      const args = differ.map((n) => `${n}=${wanted[n] ? 'on' : 'off'}`);
      return {
        changed: true,
        ops: [exec(sh`setsebool -P ${args}`, 300)],
        changes: differ.map((n) => `set SELinux boolean ${n} ${wanted[n] ? 'on' : 'off'} (was ${cur.booleans.has(n) ? (cur.booleans.get(n) ? 'on' : 'off') : 'unknown'})`),
        notify: [],
      };
    },
  };
}

/** A port that must carry an SELinux type. */
export interface PortLabel {
  type: string;
  proto?: 'tcp' | 'udp';
  port: number;
}

/**
 * Task: ports labeled with the types their confined daemon may bind. For each port whose current
 * type differs: `semanage port -m` when a single-port record of it exists (in the policy or local),
 * else `semanage port -a` (a port inside another type's range gets a narrower record of its own,
 * which wins). No-op where SELinux is disabled or not installed.
 */
export function selinuxPorts(wanted: readonly PortLabel[]): Task {
  const fact = selinuxFact([], true);
  return {
    name: `selinux ports ${wanted.map((w) => `${w.proto ?? 'tcp'}/${w.port}=${w.type}`).join(' ')}`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      if (!selinuxActive(cur)) return { changed: false, ops: [], changes: [], notify: [] };
      const ops = [];
      const changes: string[] = [];
      for (const w of wanted) {
        const proto = w.proto ?? 'tcp';
        const have = portType(cur.ports, proto, w.port);
        if (have === w.type) continue;
        const exact = cur.ports.some((r) => r.proto === proto && r.from === w.port && r.to === w.port);
        ops.push(exec(sh`semanage port ${exact ? '-m' : '-a'} -t ${w.type} -p ${proto} ${w.port}`, 300));
        changes.push(`label ${proto}/${w.port} ${w.type} (was ${have ?? 'unlabeled'})`);
      }
      return { changed: ops.length > 0, ops, changes, notify: [] };
    },
  };
}

/** Fact: the SELinux type of `path` (`stat -c %C`: `user:role:type:level`), or undefined if absent or unlabeled. */
export function fileTypeFact(path: string): Fact<string | undefined> {
  return {
    key: `selinux-type:${path}`,
    cmd: sh`stat -c %C ${path} 2>/dev/null`,
    parse: (stdout) => stdout.trim().split(':')[2] || undefined,
  };
}

/**
 * Task: `restorecon -R PATH` when PATH's type is not `type` (the type the policy's file contexts
 * give it). For files whose type decides how a confined daemon may run them, e.g. keepalived's
 * check scripts. No-op where SELinux is disabled or not installed.
 */
export function restorecon(path: string, type: string): Task {
  const modeFact = selinuxFact([], false);
  const typeFact = fileTypeFact(path);
  return {
    name: `selinux type ${type} on ${path}`,
    facts: () => [modeFact, typeFact],
    plan(facts): TaskPlan {
      if (!selinuxActive(facts.get(modeFact))) return { changed: false, ops: [], changes: [], notify: [] };
      const have = facts.get(typeFact);
      if (have === type) return { changed: false, ops: [], changes: [], notify: [] };
      return { changed: true, ops: [exec(sh`restorecon -R ${path}`)], changes: [`relabel ${path} ${type} (was ${have ?? 'unlabeled'})`], notify: [] };
    },
  };
}
