/**
 * keepalived: the VIPs of the inventory (cluster.vips), each held by exactly one host of its role.
 * Desired state only: the runner executes the tasks.
 * Facts and pitfalls: ../shared/reference/ha-stack.md "keepalived".
 */
import { sh } from '../core/cmd.js';
import { FactSet, type Fact } from '../facts/fact.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import { parseCidr } from '../inventory/net.js';
import type { Host, Inventory, Role, Vip } from '../inventory/schema.js';
import path from 'node:path';
import { directory, file, pathFact, type PathState } from '../tasks/file.js';
import { keepalivedNotify } from './monitoring.js';
import { restorecon } from '../tasks/selinux.js';
import { renderTemplate, template } from '../tasks/template.js';
import { packages } from '../tasks/package.js';
import { reloadHandler, service } from '../tasks/systemd.js';
import type { ManagedFile, Task, TaskPlan } from '../tasks/task.js';

/** Where keepalived's config lives (Debian 12 and RHEL 9). */
export const KEEPALIVED_CONF = '/etc/keepalived/keepalived.conf';

/** The interface `render` assumes when a host has no `vars.interface` (the real one comes from a fact). */
export const DEFAULT_INTERFACE = 'eth0';

/**
 * The health check of the service behind a VIP of each role: `systemctl is-active` exits 0 for
 * `active` and `reloading` (man systemctl), so a reload never moves the VIP. Roles not listed get no check.
 */
export const VIP_CHECKS: Partial<Record<Role, { name: string; script: string }>> = {
  haproxy: { name: 'chk_haproxy', script: '/usr/bin/systemctl is-active --quiet haproxy' },
  nfs: { name: 'chk_nfs', script: '/usr/bin/systemctl is-active --quiet nfs-server' },
};

/**
 * On Rocky/RHEL, keepalived runs confined (keepalived_t) and its policy grants it no access to
 * systemd's unit status, so `systemctl is-active` as a check would be denied under enforcing
 * SELinux. The policy's own answer is a script under /usr/libexec/keepalived/, labeled
 * keepalived_unconfined_script_exec_t, which keepalived runs in the unconfined
 * keepalived_unconfined_script_t domain (selinux-policy keepalived.fc and keepalived.te, c9s
 * branch; `man keepalived_selinux`). Each check becomes such a script there, running the same command.
 */
export const RHEL_CHECK_DIR = '/usr/libexec/keepalived';

/** The check of `role` as this OS family runs it (see {@link RHEL_CHECK_DIR}). */
export function vipCheck(role: Role, family: OsFamily): { name: string; script: string } | undefined {
  const check = VIP_CHECKS[role];
  if (!check || family === 'debian') return check;
  return { name: check.name, script: `${RHEL_CHECK_DIR}/airflow-ha-${check.name}` };
}

/** The content of the RHEL check script of `role` (undefined for a role without a check). */
export function checkScript(role: Role): string | undefined {
  const check = VIP_CHECKS[role];
  return check && `#!/bin/sh\n# Managed by airflow-ha: keepalived's ${check.name}, run unconfined (SELinux keepalived_unconfined_script_exec_t).\nexec ${check.script}\n`;
}

/** One vrrp_instance as the template renders it. */
export interface VrrpInstance {
  name: string;
  vip: string;
  /** Prefix length of cluster.network, e.g. 24. */
  prefix: number;
  interface: string;
  routerId: number;
  /** 150 for the role's first host, then lower in inventory order (e.g. 150, 100, 50). */
  priority: number;
  src: string;
  peers: string[];
  check?: { name: string; script: string };
  /** keepalived's `notify` script (a monitored cluster: the VIP state for node_exporter, src/components/monitoring.ts). */
  notify?: string;
}

/** The VIPs `host` shares: those whose role the host has. */
export function hostVips(inv: Inventory, host: Host): Vip[] {
  return inv.cluster.vips.filter((v) => host.roles.includes(v.role));
}

/** The VRRP priority of the i-th of n hosts: 150, 100, 50 for up to three, evenly spread for more. */
export function vrrpPriority(index: number, count: number): number {
  const step = count <= 3 ? 50 : Math.floor(140 / (count - 1));
  return 150 - step * index;
}

/** The vrrp_instances of `host` (one per VIP of its roles), its VRRP packets leaving from `iface`. */
export function vrrpInstances(inv: Inventory, host: Host, iface: string, family: OsFamily = 'debian'): VrrpInstance[] {
  const net = parseCidr(inv.cluster.network);
  if (!net) throw new Error(`cluster.network ${inv.cluster.network} is not a CIDR`);
  const notify = keepalivedNotify(inv);
  return hostVips(inv, host).map((v) => {
    const members = inv.hosts.filter((h) => h.roles.includes(v.role));
    const i = members.findIndex((h) => h.name === host.name);
    const check = vipCheck(v.role, family);
    return {
      name: `VI_${v.name.replace(/-/g, '_')}`,
      vip: v.address,
      prefix: net.prefix,
      interface: iface,
      routerId: v.routerId,
      priority: vrrpPriority(i, members.length),
      src: host.address,
      peers: members.filter((h) => h.name !== host.name).map((h) => h.address),
      ...(check ? { check } : {}),
      ...(notify ? { notify: notify.script } : {}),
    };
  });
}

/** The keepalived.conf of `host` with its VRRP interface `iface` (pure). */
export function keepalivedConfig(inv: Inventory, host: Host, iface: string, family: OsFamily = 'debian'): string {
  return renderTemplate('keepalived/keepalived.conf.njk', {
    cluster: inv.cluster.name,
    host: host.name,
    instances: vrrpInstances(inv, host, iface, family),
  });
}

/**
 * Fact: the interface that holds IPv4 `address` (`ip -o -4 addr show`, man ip-address(8)); undefined
 * if none does. Lines look like `2: host0    inet 10.1.2.11/24 brd ... scope global host0\ ...`.
 */
export function interfaceOfFact(address: string): Fact<string | undefined> {
  return {
    key: 'ip-o-4-addr',
    cmd: sh`ip -o -4 addr show`,
    parse(stdout) {
      for (const line of stdout.split('\n')) {
        const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line);
        if (m && m[2] === address) return m[1]?.replace(/@.*$/, '');
      }
      return undefined;
    },
  };
}

/**
 * Task: /etc/keepalived/keepalived.conf for `host`. The VRRP interface is `host.vars.interface`, or
 * else the interface that holds the host's address on the host (a fact of this task). The new file is
 * checked with `keepalived -t -f` before it replaces the old one; a change reloads keepalived
 * (SIGHUP: VIPs stay where they are). Throws at plan time if no interface holds the address.
 */
export function keepalivedConfTask(inv: Inventory, host: Host, family: OsFamily = 'debian'): Task {
  const fixed = typeof host.vars?.['interface'] === 'string' ? (host.vars['interface'] as string) : undefined;
  const ifaceFact = interfaceOfFact(host.address);
  const fileTask = (iface: string): Task =>
    template({
      path: KEEPALIVED_CONF,
      template: 'keepalived/keepalived.conf.njk',
      vars: { cluster: inv.cluster.name, host: host.name, instances: vrrpInstances(inv, host, iface, family) },
      validate: (tmp) => sh`keepalived -t -f ${tmp}`,
      notify: [reloadHandler('keepalived')],
    });
  const resolve = (iface: string | undefined): string => {
    const found = fixed ?? iface;
    if (!found) {
      throw new Error(`${host.name}: no interface holds ${host.address} (ip -o -4 addr show); set hosts[].vars.interface`);
    }
    return found;
  };
  // The file task's own fact carries the sha256 of the content, known only once the interface is:
  // gather the file with its content (pathFact with no expected sha) and answer the inner task's
  // fact from it. The file is small (~1 KB), so a no-op run pays little for it.
  const wholeFile = pathFact(KEEPALIVED_CONF, null);
  return {
    name: `template ${KEEPALIVED_CONF}`,
    facts: (h: HostFacts) => (fixed ? fileTask(fixed).facts(h) : [ifaceFact, wholeFile]),
    plan(facts, h): TaskPlan {
      if (fixed) return fileTask(fixed).plan(facts, h);
      const inner = fileTask(resolve(facts.get(ifaceFact)));
      return inner.plan(new FileFromWhole(facts, wholeFile), h);
    },
    files: (h: HostFacts): ManagedFile[] => fileTask(fixed ?? DEFAULT_INTERFACE).files?.(h) ?? [],
  };
}

/** Facts where any `pathFact(KEEPALIVED_CONF, sha)` is answered by the gathered `pathFact(KEEPALIVED_CONF, null)`. */
class FileFromWhole extends FactSet {
  constructor(
    private readonly inner: FactSet,
    private readonly whole: Fact<PathState>,
  ) {
    super(new Map());
  }

  override get<T>(fact: Fact<T>): T {
    if (fact.key.startsWith(`path:${KEEPALIVED_CONF}:`)) return this.inner.get(this.whole) as unknown as T;
    return this.inner.get(fact);
  }
}

/**
 * Tasks of one VIP host: the keepalived package (Debian 12: 2.2.7; RHEL 9: 2.2.x), on RHEL the
 * check scripts (see {@link RHEL_CHECK_DIR}) and their SELinux label, its config and the service
 * enabled and started. Returns no task for a host that shares no VIP.
 */
export function keepalivedTasks(inv: Inventory, host: Host, family: OsFamily = 'debian'): Task[] {
  const vips = hostVips(inv, host);
  if (vips.length === 0) return [];
  const scripts: Task[] = [];
  if (family === 'rhel') {
    const roles = [...new Set(vips.map((v) => v.role))].filter((r) => VIP_CHECKS[r]);
    if (roles.length) {
      scripts.push(directory({ path: RHEL_CHECK_DIR }));
      for (const r of roles) scripts.push(file({ path: vipCheck(r, family)!.script, content: checkScript(r)!, mode: '0755' }));
      scripts.push(restorecon(RHEL_CHECK_DIR, 'keepalived_unconfined_script_exec_t'));
    }
  }
  const notify = keepalivedNotify(inv);
  return [
    packages({ names: ['keepalived'] }),
    ...scripts,
    // Before the config that names it: keepalived -t checks the script (enable_script_security: root-owned, not writable by others).
    ...(notify ? [directory({ path: path.posix.dirname(notify.script) }), file({ path: notify.script, content: notify.content, mode: '0755' })] : []),
    keepalivedConfTask(inv, host, family),
    service({ name: 'keepalived', enabled: true, state: 'started' }),
  ];
}
