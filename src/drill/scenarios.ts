/**
 * The failure scenarios of `airflow-ha drill`: which host fails, how the failure is injected, how it
 * is undone (by the drill, or by a systemd timer on the host if the drill never gets there), which
 * host carries the load, and what `status` shows once the failure is seen. Pure: inventory and the
 * cluster's current roles (from `status`) in, commands out; src/drill/run.ts executes them.
 */
import { sh, type Cmd } from '../core/cmd.js';
import { InputError } from '../core/errors.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { airflowHosts, airflowLayout, dagProcessorHosts, workerQueues } from '../components/airflow.js';
import { haproxyVips } from '../components/haproxy.js';
import { RABBITMQ_SERVICE, rabbitmqHosts } from '../components/rabbitmq.js';
import type { CheckLine, Component, StatusReport } from '../status/model.js';

/** The scenarios, in the order a drill of several runs them. */
export const SCENARIOS = ['db-leader', 'vip', 'broker-node', 'worker', 'scheduler', 'dag-processor'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export function isScenarioName(s: string): s is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(s);
}

/**
 * How a failure is injected.
 * - `power-off`: an nftables table on the host drops all its traffic but SSH (and ARP for any address
 *   but its own, so a VIP it holds stops answering), as a VM that lost power looks to its peers.
 * - `kill`: `systemctl kill --signal=KILL` of the units, then `systemctl stop` (a crashed process that
 *   systemd does not restart while the failure is held).
 */
export type FailureMethod = 'power-off' | 'kill';

/** What each scenario's failure looks like in the design document the cluster was built from (seed 001). */
export interface SeedFigure {
  /** The failure as the document names it. */
  failure: string;
  detection: string;
  recovery: string;
  impact: string;
}

/** Seed 001, "High Availability Failover Scenarios" (the table the drill measures). */
export const SEED_FIGURES: Readonly<Record<ScenarioName, SeedFigure>> = {
  'db-leader': { failure: 'sql1 (DB leader)', detection: '~30 s', recovery: 'sql2 becomes leader', impact: 'none, transparent' },
  vip: { failure: '(not in the document)', detection: '-', recovery: 'VIP moves to the other HAProxy', impact: '-' },
  'broker-node': { failure: 'mq1 (RabbitMQ)', detection: '~10 s', recovery: 'mq2, mq3 handle traffic', impact: 'none, transparent' },
  worker: { failure: 'VM4 (worker)', detection: '~60 s', recovery: 'tasks requeue to other workers', impact: 'none if multiple workers' },
  scheduler: { failure: 'VM1 (scheduler)', detection: 'manual', recovery: 'manual restart', impact: 'no new tasks scheduled' },
  'dag-processor': { failure: 'VM2 (DAG processor)', detection: '~5 min', recovery: 'manual restart', impact: 'DAG changes not detected' },
};

/** Who holds the moving roles now, read from a `status` report ({@link clusterView}). */
export interface ClusterView {
  /** The Patroni leader's host name. */
  patroniLeader?: string;
  /** The host holding the first haproxy VIP. */
  vipHolder?: string;
}

/** The cluster's current Patroni leader and VIP holder, as `status` reported them. */
export function clusterView(inv: Inventory, report: StatusReport): ClusterView {
  const lines = report.components.flatMap((c) => c.checks);
  const leader = lines.find((l) => l.component === 'patroni' && l.check === 'leader')?.host;
  const vip = haproxyVips(inv)[0];
  const holder = vip ? lines.find((l) => l.component === 'keepalived' && l.check.startsWith(`vip ${vip.name} `))?.host : undefined;
  return { ...(leader ? { patroniLeader: leader } : {}), ...(holder ? { vipHolder: holder } : {}) };
}

/** Names the drill gives the objects it creates (a run removes them; a new run removes leftovers first). */
export const DRILL_OBJECTS = {
  /** Table in the Airflow database (through the HAProxy write port). */
  table: 'airflow_ha_drill',
  /** Quorum queue in the Airflow vhost. */
  queue: 'airflow-ha-drill',
  /** nftables table (families inet and arp) of a power-off. */
  nftTable: 'airflow_ha_drill',
  /** The file whose existence tells the load to stop (root-owned, world-readable folder). */
  stopFile: '/run/airflow-ha-drill.stop',
} as const;

/** Settings of one drill run. */
export interface DrillSettings {
  /** Seconds the failure is held before the drill restores the component. */
  holdSec: number;
  /** Seconds after injection at which the host's own timer undoes the failure (> holdSec). */
  undoAfterSec: number;
}

/** One scenario, planned on one inventory. */
export interface ScenarioPlan {
  scenario: ScenarioName;
  /** The host whose component fails. */
  target: string;
  method: FailureMethod;
  /** systemd units killed (method `kill`). */
  units: string[];
  /** The Airflow host that runs the load (never the target of a power-off). */
  loadHost: string;
  /** The Celery queue the task load uses, when the scenario needs tasks (worker, scheduler, dag-processor). */
  taskQueue?: string;
  /** The status components whose lines about the target show the failure. */
  components: Component[];
  /** The transient unit of the undo timer (`<name>.timer` + `<name>.service`). */
  undoUnit: string;
  /** Schedules the undo timer; run (and checked) BEFORE {@link inject}. */
  scheduleUndo: Cmd;
  inject: Cmd;
  /** Undoes the failure; idempotent (the timer runs the same command). */
  restore: Cmd;
  /** Cancels the undo timer after a normal restore; idempotent. */
  cancelUndo: Cmd;
  /** One line for people: what the drill will do. */
  describe: string;
}

/** The nftables ruleset of a power-off of `address`: every packet dropped but SSH on `sshPort`, loopback, and ARP about the host's own address. */
export function powerOffRuleset(address: string, sshPort: number): string {
  const t = DRILL_OBJECTS.nftTable;
  return [
    `table inet ${t} {`,
    `  chain input { type filter hook input priority -300; policy drop; iif "lo" accept; tcp dport ${sshPort} accept; }`,
    `  chain output { type filter hook output priority -300; policy drop; oif "lo" accept; tcp sport ${sshPort} accept; }`,
    `}`,
    `table arp ${t} {`,
    `  chain input { type filter hook input priority 0; policy drop; arp daddr ip ${address} accept; }`,
    `  chain output { type filter hook output priority 0; policy drop; arp saddr ip ${address} accept; }`,
    `}`,
  ].join('\n');
}

function byName(inv: Inventory, name: string | undefined, what: string): Host {
  const h = name ? inv.hosts.find((x) => x.name === name) : undefined;
  if (!h) throw new InputError(`drill: ${what} is not known (status did not report it, or it is not an inventory host)`);
  return h;
}

/**
 * The host and failure of `scenario`. Throws InputError when the inventory has nothing to fail
 * (e.g. `vip` without a haproxy VIP, `worker` without a worker host).
 */
function targetOf(inv: Inventory, scenario: ScenarioName, view: ClusterView): { host: Host; method: FailureMethod; units: string[]; components: Component[] } {
  const units = airflowLayout(inv.cluster.versions.airflow).units;
  const first = (hosts: Host[], role: string) => {
    const h = hosts[0];
    if (!h) throw new InputError(`drill ${scenario}: no host has the role ${role}`);
    return h;
  };
  switch (scenario) {
    case 'db-leader':
      // Patroni and its PostgreSQL (every process of the unit's cgroup: `systemctl kill` signals
      // them all whatever the unit's KillMode, systemctl(1)): the leader key then expires after
      // ttl. Not a power-off: on hosts that also run etcd or RabbitMQ, that would drill them too.
      return { host: byName(inv, view.patroniLeader, 'the Patroni leader'), method: 'kill', units: ['patroni.service'], components: ['patroni'] };
    case 'vip':
      if (haproxyVips(inv).length === 0) throw new InputError('drill vip: the inventory has no VIP with role haproxy');
      return { host: byName(inv, view.vipHolder, `the holder of VIP ${haproxyVips(inv)[0]?.name}`), method: 'power-off', units: [], components: ['hosts', 'haproxy', 'keepalived'] };
    case 'broker-node':
      // The first node: the load's broker connection and its quorum queue's leader are there.
      return { host: first(rabbitmqHosts(inv), 'rabbitmq'), method: 'kill', units: [`${RABBITMQ_SERVICE}.service`], components: ['rabbitmq'] };
    case 'worker': {
      // The worker host with the fewest other roles: the one whose loss is a worker's loss only.
      const workers = inv.hosts.filter((h) => h.roles.includes('worker')).sort((a, b) => a.roles.length - b.roles.length);
      return { host: first(workers, 'worker'), method: 'kill', units: [units.worker], components: ['airflow'] };
    }
    case 'scheduler':
      return { host: first(inv.hosts.filter((h) => h.roles.includes('scheduler')), 'scheduler'), method: 'kill', units: [units.scheduler], components: ['airflow'] };
    case 'dag-processor':
      return { host: first(dagProcessorHosts(inv), 'dag_processor or scheduler'), method: 'kill', units: [units['dag-processor']], components: ['airflow'] };
  }
}

/** The queue the task load uses: one the target worker consumes that another worker consumes too (else its first). */
function taskQueue(inv: Inventory, target: Host): string {
  const workers = inv.hosts.filter((h) => h.roles.includes('worker'));
  const own = target.roles.includes('worker') ? workerQueues(target) : workerQueues(workers[0] ?? target);
  const shared = own.find((q) => workers.some((w) => w.name !== target.name && workerQueues(w).includes(q)));
  return shared ?? (own[0] as string);
}

/**
 * Plans `scenario` on `inv`, with the roles `view` says the cluster has now.
 * @throws InputError when there is nothing to fail, or no Airflow host to carry the load that is not
 *   the target of a power-off.
 */
export function planScenario(inv: Inventory, scenario: ScenarioName, view: ClusterView, settings: DrillSettings): ScenarioPlan {
  const { host, method, units, components } = targetOf(inv, scenario, view);
  const candidates = airflowHosts(inv);
  // Not the target; for a killed service, the target's host may carry the load when it is the only Airflow host.
  const loadHost = candidates.find((h) => h.name !== host.name) ?? (method === 'kill' ? candidates[0] : undefined);
  if (!loadHost) throw new InputError(`drill ${scenario}: the load runs on an Airflow host other than ${host.name}, and the inventory has none`);
  const undoUnit = `airflow-ha-drill-undo-${scenario}`;
  const t = DRILL_OBJECTS.nftTable;
  const restore =
    method === 'power-off'
      ? sh`if nft list table inet ${t} >/dev/null 2>&1; then nft delete table inet ${t}; fi; if nft list table arp ${t} >/dev/null 2>&1; then nft delete table arp ${t}; fi`
      : sh`systemctl start ${units}`;
  const sshPort = host.ssh?.port ?? inv.ssh.port ?? 22;
  const inject =
    method === 'power-off'
      ? sh`printf '%s\\n' ${powerOffRuleset(host.address, sshPort)} | nft -f -`
      : sh`systemctl kill --signal=KILL ${units} && systemctl stop ${units}`;
  const needsTasks = scenario === 'worker' || scenario === 'scheduler' || scenario === 'dag-processor';
  const what = method === 'power-off' ? `drop all traffic of ${host.name} but SSH (power-off)` : `kill ${units.join(', ')} on ${host.name}`;
  return {
    scenario,
    target: host.name,
    method,
    units,
    loadHost: loadHost.name,
    ...(needsTasks ? { taskQueue: taskQueue(inv, host) } : {}),
    components,
    undoUnit,
    // A timer left from a run that died is replaced, never stacked.
    scheduleUndo: sh`systemctl stop ${`${undoUnit}.timer`} >/dev/null 2>&1; systemctl reset-failed ${`${undoUnit}.service`} >/dev/null 2>&1; systemd-run --quiet --collect --on-active=${`${settings.undoAfterSec}s`} --unit=${undoUnit} --description=${`airflow-ha drill: undo ${scenario} on ${host.name}`} /bin/sh -c ${restore.asWord()}`,
    inject,
    restore,
    cancelUndo: sh`systemctl stop ${`${undoUnit}.timer`} >/dev/null 2>&1; systemctl reset-failed ${`${undoUnit}.service`} >/dev/null 2>&1; true`,
    describe: `${scenario}: ${what} for ${settings.holdSec} s (undone by timer ${undoUnit} after ${settings.undoAfterSec} s if the drill stops); load from ${loadHost.name}`,
  };
}

/**
 * Whether `report` shows the failure of `plan`: a line of its components about the target that is
 * not healthy, the target unreachable, or (db-leader, vip) the role moved off the target.
 */
export function showsFailure(plan: ScenarioPlan, inv: Inventory, report: StatusReport): boolean {
  const lines: CheckLine[] = report.components.flatMap((c) => c.checks);
  if (report.hosts.some((h) => h.name === plan.target && !h.reachable)) return true;
  if (lines.some((l) => plan.components.includes(l.component) && l.host === plan.target && l.verdict !== 'healthy')) return true;
  const view = clusterView(inv, report);
  if (plan.scenario === 'db-leader') return view.patroniLeader !== plan.target;
  if (plan.scenario === 'vip') return view.vipHolder !== plan.target;
  return false;
}

/**
 * What the drill would do for `scenario`, for people, without contacting the cluster (`drill`
 * without `--yes`). The Patroni leader and the VIP holder are named by role: the drill reads them
 * from `status` when it starts.
 */
export function scenarioIntent(inv: Inventory, scenario: ScenarioName, settings: DrillSettings): string {
  const vip = haproxyVips(inv)[0];
  const undo = `(undone by a timer on that host after ${settings.undoAfterSec} s if the drill stops)`;
  if (scenario === 'db-leader') return `db-leader: kill patroni.service (Patroni and PostgreSQL) on the current Patroni leader for ${settings.holdSec} s ${undo}; load from an Airflow host`;
  if (scenario === 'vip') return `vip: drop all traffic but SSH of the host holding VIP ${`${vip?.name ?? '(none)'} ${vip?.address ?? ''}`.trimEnd()} (power-off) for ${settings.holdSec} s ${undo}; load from an Airflow host other than it`;
  return planScenario(inv, scenario, {}, settings).describe;
}
