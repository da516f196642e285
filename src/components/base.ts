/**
 * The base system of every host (bootstrap step 1): identity and name resolution, time zone and
 * time sync, base packages, the operators' admin account, and a firewall that opens each role's
 * ports to the cluster network only. Source of the order: ../reference/ha-stack.md "Order of a bootstrap".
 */
import { sh } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { HostFacts } from '../facts/host.js';
import { activeSpecs, clientSources, HOST_PORTS, hostSshPort, operatorSources, ROLE_PORTS, sourceWithin, sshClients, vrrpPeers, type PortClient } from '../inventory/ports.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { command } from '../tasks/command.js';
import { directory, file, managedBlock } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import { restartHandler, service, unit } from '../tasks/systemd.js';
import { user } from '../tasks/system.js';
import { renderTemplate, template } from '../tasks/template.js';
import type { Handler, Task } from '../tasks/task.js';

/**
 * The /etc/hosts block every host gets: one line per inventory host (`ADDRESS NAME`) and per VIP,
 * so short names resolve everywhere (RabbitMQ and the Airflow log server need this).
 */
export function hostsBlock(inv: Inventory): string {
  const width = Math.max(...inv.hosts.map((h) => h.address.length), ...inv.cluster.vips.map((v) => v.address.length));
  const line = (addr: string, name: string) => `${addr.padEnd(width)} ${name}`;
  return [
    ...inv.hosts.map((h) => line(h.address, h.name)),
    ...inv.cluster.vips.map((v) => line(v.address, v.name)),
  ].join('\n');
}

/** Tasks: the host's name in /etc/hostname and in the kernel, and the managed /etc/hosts block. */
export function hostIdentityTasks(inv: Inventory, name: string): Task[] {
  return [
    file({ path: '/etc/hostname', content: `${name}\n` }),
    command({
      name: `hostname ${name}`,
      cmd: sh`hostname ${name}`,
      unless: sh`test "$(uname -n)" = ${name}`,
    }),
    managedBlock({ path: '/etc/hosts', id: `cluster ${inv.cluster.name}`, block: hostsBlock(inv) }),
  ];
}

/** Packages every host gets, per OS family. */
export function basePackages(family: HostFacts['family']): string[] {
  return family === 'debian'
    ? ['tzdata', 'chrony', 'nftables', 'sudo', 'ca-certificates', 'python3']
    : // firewalld instead of nftables (see firewalldTasks); semanage and restorecon
      // (policycoreutils-python-utils) for SELinux; `dnf versionlock` holds pinned packages.
      ['tzdata', 'chrony', 'firewalld', 'sudo', 'ca-certificates', 'python3', 'policycoreutils-python-utils', 'python3-dnf-plugin-versionlock'];
}

/** Tasks: time zone (the /etc/localtime link and, on Debian, /etc/timezone). */
export function timezoneTasks(inv: Inventory, family: HostFacts['family']): Task[] {
  const tz = inv.cluster.timezone;
  const zone = `/usr/share/zoneinfo/${tz}`;
  return [
    command({
      name: `time zone ${tz}`,
      cmd: sh`test -e ${zone} && ln -sfn ${zone} /etc/localtime`,
      unless: sh`test "$(readlink /etc/localtime)" = ${zone}`,
    }),
    ...(family === 'debian' ? [file({ path: '/etc/timezone', content: `${tz}\n` })] : []),
  ];
}

/**
 * Tasks: chrony running. Skipped in containers, which share the machine's clock and may not set it
 * (Debian's chrony.service has ConditionCapability=CAP_SYS_TIME, so it would never start there).
 */
export function timeSyncTasks(facts: HostFacts): Task[] {
  if (facts.container) return [];
  return [service({ name: facts.family === 'debian' ? 'chrony' : 'chronyd', enabled: true, state: 'started' })];
}

/** Tasks: the admin account, by SSH key only, with passwordless sudo checked by visudo before it is installed. */
export function adminTasks(inv: Inventory): Task[] {
  const admin = inv.cluster.admin;
  if (!admin) return [];
  const home = `/home/${admin.user}`;
  return [
    user({ name: admin.user, home, shell: '/bin/bash' }),
    directory({ path: `${home}/.ssh`, mode: '0700', owner: admin.user, group: admin.user }),
    file({ path: `${home}/.ssh/authorized_keys`, content: `${admin.authorizedKeys.join('\n')}\n`, mode: '0600', owner: admin.user, group: admin.user }),
    file({
      path: `/etc/sudoers.d/airflow-ha-${admin.user}`,
      content: `# Managed by airflow-ha: the admin account logs in by key and has no password.\n${admin.user} ALL=(ALL) NOPASSWD: ALL\n`,
      mode: '0440',
      validate: (tmp) => sh`visudo -cq -f ${tmp}`,
    }),
  ];
}

/** One accept rule of a host's firewall: a port (range) of one of its roles and who may reach it. */
export interface FirewallRule {
  /** `role: label`, e.g. `etcd: etcdPeer`. */
  label: string;
  /** Why these clients (from {@link ROLE_PORTS}). */
  why: string;
  /** The nft port expression: `5432` or `6000-6500`. */
  range: string;
  /** Source addresses and networks; empty when no host of the inventory is a client (nothing accepted). */
  sources: string[];
  /** UDP too (`meta l4proto { tcp, udp } th dport`, nft(8) "RAW PAYLOAD EXPRESSION"). */
  udp?: boolean;
}

/**
 * The ports `host`'s roles listen on (sshd excluded), each with the addresses allowed to reach it:
 * the clients of src/inventory/ports.ts ROLE_PORTS resolved against `inv`. A port two roles of the
 * host share (the triggerer's log server) is one rule with both roles' clients.
 */
export function firewallRules(host: Host, inv: Inventory): FirewallRule[] {
  const out: FirewallRule[] = [];
  // One listener per `cluster.ports` setting, whichever roles of the host claim it.
  const bySetting = new Map<string, { rule: FirewallRule; clients: PortClient[] }>();
  const specs = [
    ...activeSpecs(inv, HOST_PORTS).map((spec) => ({ role: 'every host', spec })),
    ...[...new Set(host.roles)].flatMap((role) => activeSpecs(inv, ROLE_PORTS[role]).map((spec) => ({ role: role as string, spec }))),
  ];
  {
    for (const { role, spec } of specs) {
      const [from, to] = spec.range(inv.cluster.ports);
      const seen = spec.setting === undefined ? undefined : bySetting.get(spec.setting);
      if (seen) {
        seen.clients.push(...spec.clients);
        seen.rule.sources = clientSources(inv, seen.clients);
        continue;
      }
      const rule: FirewallRule = { label: `${role}: ${spec.label}`, why: spec.why, range: from === to ? String(from) : `${from}-${to}`, sources: clientSources(inv, spec.clients), ...(spec.udp ? { udp: true } : {}) };
      if (spec.setting !== undefined) bySetting.set(spec.setting, { rule, clients: [...spec.clients] });
      out.push(rule);
    }
  }
  return out;
}

/** The nftables variables of `host`'s firewall (pure; the template is templates/base/firewall.nft.njk). */
export function firewallVars(host: Host, inv: Inventory): Record<string, unknown> {
  return {
    cluster: inv.cluster.name,
    network: inv.cluster.network,
    ssh_port: hostSshPort(host, inv),
    ssh_sources: sshClients(inv) ?? [],
    vrrp_peers: vrrpPeers(host, inv),
    rules: firewallRules(host, inv),
  };
}

/** The oneshot unit that loads airflow-ha's nftables table on every host. */
export const FIREWALL_UNIT = 'airflow-ha-firewall.service';

/**
 * Tasks: the firewall. One nftables table of our own (`inet airflow_ha`), loaded by a oneshot unit:
 * its input chain accepts established connections, loopback, ICMP, DHCP replies, sshd, VRRP from the
 * keepalived peers and each role port from its clients only (see {@link firewallRules}); its policy
 * drops everything else, TCP and UDP alike. Other tables are left alone, but a packet this chain
 * drops is dropped whatever they say (nft(8), "CHAINS": a drop verdict is final for the hook).
 * Source: nft(8), "ADDRESS FAMILIES" and "CHAINS".
 */
export function firewallTasks(host: Host, inv: Inventory): Task[] {
  const path = '/etc/airflow-ha/firewall.nft';
  const unitName = FIREWALL_UNIT;
  return [
    directory({ path: '/etc/airflow-ha' }),
    template({
      path,
      template: 'base/firewall.nft.njk',
      vars: firewallVars(host, inv),
      validate: (tmp) => sh`nft -c -f ${tmp}`,
      notify: [restartHandler(unitName)],
    }),
    unit({
      name: unitName,
      content: [
        '# Managed by airflow-ha: loads its own nftables table (see /etc/airflow-ha/firewall.nft).',
        '[Unit]',
        'Description=airflow-ha firewall rules',
        'Wants=network-pre.target',
        'Before=network-pre.target',
        '',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        `ExecStart=/usr/sbin/nft -f ${path}`,
        'ExecStop=/usr/sbin/nft delete table inet airflow_ha',
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
      ].join('\n'),
    }),
    service({ name: unitName, enabled: true, state: 'started' }),
  ];
}

/** The zone of our own on Rocky/RHEL (at most 17 characters, firewalld.zone(5)). */
export const FIREWALLD_ZONE = 'airflow-ha';

/** The firewalld zone file of `host` (pure). */
export function firewalldZone(host: Host, inv: Inventory): string {
  return renderTemplate('base/firewalld-zone.xml.njk', firewalldZoneVars(host, inv));
}

function firewalldZoneVars(host: Host, inv: Inventory): Record<string, unknown> {
  // Operators outside the cluster network join the zone as sources of their own, so the rich rules
  // that name them apply (packets from elsewhere go to the interface's zone).
  const outside = operatorSources(inv).filter((s) => !sourceWithin(s, inv.cluster.network));
  return {
    cluster: inv.cluster.name,
    network: inv.cluster.network,
    extra_sources: outside,
    ssh_port: hostSshPort(host, inv),
    vrrp_peers: vrrpPeers(host, inv),
    rules: firewallRules(host, inv),
  };
}

/**
 * Tasks (Rocky/RHEL): the firewall is firewalld, RHEL's own. A zone of our own
 * (/etc/firewalld/zones/airflow-ha.xml) binds the cluster network as its source and accepts sshd,
 * VRRP (on keepalived hosts) and the role ports; packets from elsewhere keep going to the
 * interface's zone (public by default, untouched: its ssh service stays). The file is checked by
 * `firewall-offline-cmd --system-config DIR --check-config` on a copy (firewall-offline-cmd(1):
 * "check the validity of handwritten configuration files before copying them") and a change is
 * applied by `firewall-cmd --reload` (firewall-cmd(1): reloads the permanent configuration and
 * keeps established connections).
 */
export function firewalldTasks(host: Host, inv: Inventory): Task[] {
  const path = `/etc/firewalld/zones/${FIREWALLD_ZONE}.xml`;
  const reload: Handler = { id: 'reload:firewalld', name: 'firewall-cmd --reload', ops: [exec(sh`firewall-cmd --reload`)] };
  return [
    template({
      path,
      template: 'base/firewalld-zone.xml.njk',
      vars: firewalldZoneVars(host, inv),
      validate: (tmp) =>
        sh`d=$(mktemp -d) && mkdir "$d/zones" && cp ${tmp} "$d/zones/"${`${FIREWALLD_ZONE}.xml`} && firewall-offline-cmd --system-config "$d" --check-config; rc=$?; rm -rf "$d"; exit "$rc"`,
      notify: [reload],
    }),
    service({ name: 'firewalld', enabled: true, state: 'started' }),
  ];
}

/** Every task of the base step for one host, in order. */
export function baseTasks(inv: Inventory, host: Host, facts: HostFacts): Task[] {
  return [
    ...hostIdentityTasks(inv, host.name),
    packages({ names: basePackages(facts.family) }),
    ...timezoneTasks(inv, facts.family),
    ...timeSyncTasks(facts),
    ...adminTasks(inv),
    ...(facts.family === 'rhel' ? firewalldTasks(host, inv) : firewallTasks(host, inv)),
  ];
}
