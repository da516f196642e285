/**
 * What `airflow-ha status` checks: for each component, the probes each host runs (by its roles) and
 * the judgement of their outputs into report lines. Pure: probes are commands, judgements are
 * functions of the outputs; src/run/status.ts runs the probes, one script per host.
 *
 * Facts each check relies on: ../shared/reference/ha-stack.md ("Healthy:" lines of each component).
 */
import { skewedHosts, type OffsetBound } from '../core/clock.js';
import { raw, sh, type Cmd } from '../core/cmd.js';
import { Secret } from '../core/secret.js';
import type { FactOutput } from '../facts/fact.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import type { Host, Inventory, Role, Vip } from '../inventory/schema.js';
import { ADMIN_USER, AIRFLOW_VHOST, brokerPort, nodeName } from '../components/rabbitmq.js';
import { HAPROXY_ASK_PY, HAPROXY_STATS_USER, haproxyStatsSocket } from '../components/haproxy.js';
import { airflowHosts, airflowLayout, airflowMetadataGlob, airflowPaths, airflowServices, celeryNode, dagBundleBare, dagBundleCheckout, dagBundleConfig, dagProcessorHosts, FLOWER_USER, triggererHosts, webserverFrontendUrl, workerQueues, type AirflowServiceKind } from '../components/airflow.js';
import { AIRFLOW_DB, PATRONI_MAX_LAG_ON_FAILOVER, patroniApiUrl, patroniDcs, psql } from '../components/patroni.js';
import { ROOT_CLIENT, scheme, tlsEnabled } from '../tls/plan.js';
import { tlsLines, tlsProbes } from './tls.js';
import { DAG_READER_ROLES, dagsMode } from '../inventory/rules.js';
import { DRILL_OBJECTS } from '../drill/scenarios.js';
import { backupStanza, infoCommand } from '../components/backup.js';
import { ARCHIVER_SQL, formatAge, lastGoodBackup, parseArchiver, parseInfo, segmentsWaiting } from '../backup/info.js';
import type { CheckLine, Component, HostReach, Verdict } from './model.js';
import * as p from './parsers.js';
import { HTTP_AUTH_ENV, httpGet, httpPost, NO_ANSWER, parseHttp, tcpProbe, TIMED_OUT, type Probe } from './script.js';

/** Seconds a data-plane probe may take (HTTP to etcd, Patroni, RabbitMQ and HAProxy; a TCP connect). */
export const PROBE_TIMEOUT_SEC = 3;

/**
 * The systemd units of each data-plane role whose state is shown when a check fails on that host.
 * Airflow's units come from the Airflow component ({@link airflowServices}): a scheduler host also
 * runs the triggerer and the DAG processor when no host has those roles.
 */
export const ROLE_UNITS: Partial<Record<Role, readonly string[]>> = {
  etcd: ['etcd.service'],
  postgresql: ['patroni.service'],
  haproxy: ['haproxy.service', 'keepalived.service'],
  rabbitmq: ['rabbitmq-server.service'],
  nfs: ['nfs-server.service'],
  ftp: ['vsftpd.service'],
  monitoring: ['prometheus.service', 'prometheus-alertmanager.service'],
};

/** The Airflow service kinds whose units a check of `role` names (the triggerer/DAG processor ones too for a scheduler). */
const AIRFLOW_KINDS: Partial<Record<Role, readonly AirflowServiceKind[]>> = {
  scheduler: ['scheduler', 'triggerer', 'dag-processor'],
  triggerer: ['triggerer'],
  dag_processor: ['dag-processor'],
  webserver: ['webserver'],
  worker: ['worker'],
  flower: ['flower'],
};

/** What the checks are planned and judged from. `secrets` is undefined when the state has no secrets file. */
export interface StatusContext {
  inventory: Inventory;
  secrets?: ClusterSecrets;
}

/**
 * One probe's output as judged: stdout and exit code ({@link NO_ANSWER} when the host's script was
 * cut off before the probe ended, {@link TIMED_OUT} when its own timeout killed it), with the
 * seconds the controller waited for the host's script (`waitedSec`), for the "no answer" line, and
 * the probe's own timeout (`timeoutSec`), for the "timed out after N s" line.
 */
export interface ProbeResult extends FactOutput {
  waitedSec?: number;
  timeoutSec?: number;
  /** Seconds since this output was read, when `status --watch` reused it ({@link Probe.refreshSec}); unset for an answer of this run. */
  ageSec?: number;
}

/** One host's outcome: reached or not, and each probe's output by probe id. */
export interface HostResult {
  reach: HostReach;
  outputs?: ReadonlyMap<string, ProbeResult>;
  /**
   * The host's clock (ms since the epoch) as its script printed it first, and the controller's times
   * (ms) when the script was sent and when that first line arrived: its offset lies between
   * `hostMs - receivedAtMs` and `hostMs - sentAtMs`.
   */
  clock?: { hostMs: number; sentAtMs: number; receivedAtMs: number };
}

/** Results by host name. */
export type Results = ReadonlyMap<string, HostResult>;

/** One component's probes (per host, by its roles) and judgement (all hosts' results -> lines). */
export interface StatusCheck {
  component: Component;
  probes(ctx: StatusContext, host: Host): Probe[];
  judge(ctx: StatusContext, results: Results): CheckLine[];
}

const has = (h: Host, r: Role) => h.roles.includes(r);
const hostsOf = (inv: Inventory, r: Role) => inv.hosts.filter((h) => has(h, r));

/**
 * How many hosts ask a question that any one of them answers for the whole cluster (Patroni's
 * `/cluster`, etcd's member list, RabbitMQ's cluster-wide API views, the heartbeat query, the write
 * path through the VIP): two, one to spare when a host is down, instead of every host paying for
 * the same answer on every `status` and every `--watch` tick.
 */
export const VIEW_HOSTS = 2;

/** The hosts of `role` that ask the cluster-wide questions: the first {@link VIEW_HOSTS} of the inventory. */
function viewHosts(inv: Inventory, role: Role | readonly Role[]): Host[] {
  const roles = typeof role === 'string' ? [role] : role;
  return inv.hosts.filter((h) => roles.some((r) => has(h, r))).slice(0, VIEW_HOSTS);
}
const probe = (id: string, cmd: Cmd, timeoutSec = PROBE_TIMEOUT_SEC): Probe => ({ id, cmd, timeoutSec });
/** Prints stdin line by line with sh builtins (no cat: no process started), a last line without a newline included. */
const READ_LINES = `while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; done`;
/** A probe that only reads files of this host (/proc, /run, the venv, the TLS folder) and so cannot hang on PID 1, a mount or the network ({@link Probe.local}). */
const local = (p: Probe): Probe => ({ ...p, local: true });

/**
 * Seconds `status --watch` keeps the answer of a slow-changing check ({@link Probe.refreshSec}):
 * disk use, the installed release, the DAG folder and its revision, the target's SSH login,
 * certificate dates and the backup catalogue are asked at most this often, the rest on every tick.
 */
export const SLOW_REFRESH_SEC = 30;

/** `p`, asked at most every {@link SLOW_REFRESH_SEC} in `status --watch`. */
const slow = (p: Probe): Probe => ({ ...p, refreshSec: SLOW_REFRESH_SEC });
/** An HTTP GET with HTTP basic auth (RFC 7617), the credentials in the probe's environment, never in an argv. */
const basicAuthGet = (id: string, url: string, user: string, password: Secret): Probe => ({
  ...probe(id, httpGet(url, true)),
  env: { [HTTP_AUTH_ENV]: new Secret(`Basic ${Buffer.from(`${user}:${password.reveal()}`).toString('base64')}`) },
});

/** The output of probe `id` on `host`, or undefined when the host was not reached. */
function out(results: Results, host: string, id: string): ProbeResult | undefined {
  return results.get(host)?.outputs?.get(id);
}

/** Why nothing came from `host`: its unreachable reason, or undefined when it was reached. */
function unreachable(results: Results, host: string): string | undefined {
  const r = results.get(host);
  if (!r) return 'not checked';
  return r.reach.reachable ? undefined : `host unreachable: ${r.reach.reason ?? 'no answer'}`;
}

/** The units of `host` that `role`'s checks name: {@link ROLE_UNITS}, or the Airflow services it runs. */
function roleUnits(inv: Inventory, host: Host, role: Role): string[] {
  const kinds = AIRFLOW_KINDS[role];
  if (!kinds) return [...(ROLE_UNITS[role] ?? [])];
  return airflowServices(inv, host).filter((s) => kinds.includes(s.kind)).map((s) => s.unit);
}

/** Every unit of `host` whose state the `units` probe reads, in a fixed order. */
export function unitsOf(inv: Inventory, host: Host): string[] {
  return [...new Set(host.roles.flatMap((r) => roleUnits(inv, host, r)))];
}

/** Each of `host`'s units ({@link unitsOf}) with its state from the `units` probe, or undefined without its output. */
function unitStates(ctx: StatusContext, results: Results, host: Host): Record<string, string> | undefined {
  const o = out(results, host.name, 'units');
  return o ? p.parseIsActive(o.stdout, unitsOf(ctx.inventory, host)) : undefined;
}

/** `unit inactive` notes for the host's units of `role` that are not active (from the `units` probe). */
function unitNotes(ctx: StatusContext, results: Results, host: Host, role: Role): string {
  const states = unitStates(ctx, results, host);
  if (!states) return '';
  const bad = roleUnits(ctx.inventory, host, role).filter((u) => states[u] !== 'active').map((u) => `${u} ${states[u]}`);
  return bad.length ? bad.join(', ') : '';
}

/** systemd states of a unit that is not running its process now (systemctl is-active; `activating` covers a pending auto-restart). */
const STOPPED_STATES: ReadonlySet<string> = new Set(['inactive', 'failed', 'activating', 'deactivating']);

/**
 * `unit state` when `host`'s own unit of Airflow service `kind` is stopped by the `units` probe's
 * answer; '' when it runs, the host runs no such unit, or the probe gave no answer.
 */
function serviceStopped(ctx: StatusContext, results: Results, host: Host, kind: AirflowServiceKind): string {
  if (localUnanswered(out(results, host.name, 'units'))) return '';
  const svc = airflowServices(ctx.inventory, host).find((x) => x.kind === kind);
  const state = svc && unitStates(ctx, results, host)?.[svc.unit];
  if (!svc || !state) return '';
  return STOPPED_STATES.has(state) ? `${svc.unit} ${state}` : '';
}

/** Whether probe `id` of a reached `host` had not ended when the controller stopped waiting. */
function silent(results: Results, host: string, id: string): boolean {
  return out(results, host, id)?.code === NO_ANSWER;
}

/** `what: no answer within N s` for a probe cut off at the host's deadline. */
function noAnswer(o: ProbeResult | undefined, what: string): string {
  return `${what}: no answer within ${o?.waitedSec ?? '?'} s`;
}

/**
 * Whether a probe of a local command (no network peer behind it: `ip`, `systemctl`, `/proc`) gave
 * no answer: cut off at the host's deadline, or killed by its own timeout. Either way what it
 * would have said is unknown; for such a probe a timeout observes nothing about the cluster.
 */
function localUnanswered(o: ProbeResult | undefined): boolean {
  return o?.code === NO_ANSWER || o?.code === TIMED_OUT;
}

/** `what: timed out after N s` for a probe killed by its own timeout. */
function timedOut(o: ProbeResult | undefined, what: string): string {
  return `${what}: timed out after ${o?.timeoutSec ?? '?'} s`;
}

/** A probe's failure as a reason: no answer in time, timed out, or the exit code and its last line. */
function failure(o: ProbeResult | undefined, what: string): string {
  if (!o) return `${what}: no output`;
  if (o.code === NO_ANSWER) return noAnswer(o, what);
  if (o.code === TIMED_OUT) return timedOut(o, what);
  const last = o.stdout.trim().split('\n').filter(Boolean).pop();
  return `${what}: exit ${o.code}${last ? ` (${last.slice(0, 120)})` : ''}`;
}

const join = (...parts: Array<string | undefined | false>) => parts.filter(Boolean).join('; ');
const line = (component: Component, check: string, verdict: Verdict, extra: Partial<CheckLine> = {}): CheckLine => ({ component, check, verdict, ...extra });

// ---------------------------------------------------------------------------------------------
// Hosts: reachable, failed units, disk, memory, load, clock.

/** Disk use (percent) from which a data folder's file system degrades its host. */
export const DISK_USED_PCT = 90;
/** Available memory share (percent) below which a host is degraded. */
export const MEM_AVAILABLE_PCT = 10;
/**
 * 5-minute load per CPU above which a host is degraded (a sustained queue of runnable tasks, not a
 * spike). Override per host with `vars.statusLoadPerCpu` (e.g. for containers, which see the load
 * average of the machine they share).
 */
export const LOAD_PER_CPU = 2;

/** The load-per-CPU threshold of `host` (`vars.statusLoadPerCpu`, default {@link LOAD_PER_CPU}). */
export function loadThreshold(host: Host): number {
  const v = Number(host.vars?.['statusLoadPerCpu'] ?? LOAD_PER_CPU);
  return Number.isFinite(v) && v > 0 ? v : LOAD_PER_CPU;
}
/** Clock spread between hosts (ms) above which the cluster is degraded (etcd and Patroni leases are time-based). */
export const CLOCK_SPREAD_MS = 1000;

/** Data folders whose file system is checked, per role (both OS families' paths; missing ones are skipped). */
const DATA_DIRS: Partial<Record<Role, readonly string[]>> = {
  etcd: ['/var/lib/etcd'],
  postgresql: ['/var/lib/postgresql', '/var/lib/pgsql'],
  rabbitmq: ['/var/lib/rabbitmq'],
  nfs: ['/srv'],
  // The default repoPath; a repository elsewhere (or on S3) is not checked here.
  backup: ['/var/lib/pgbackrest'],
};
/** Roles whose data folder is AIRFLOW_HOME (`cluster.airflow.home`: logs, the virtualenv). */
const AIRFLOW_DATA_ROLES: readonly Role[] = ['scheduler', 'worker'];

/** The ids of {@link hostsCheck}'s probes: local reads whose timeout is the host's own problem. */
const HOST_PROBE_IDS = /^(host\.|units$)/;

export const hostsCheck: StatusCheck = {
  component: 'hosts',
  probes(ctx, host) {
    const home = ctx.inventory.cluster.airflow.home;
    const dirs = [...new Set(['/', ...host.roles.flatMap((r) => (AIRFLOW_DATA_ROLES.includes(r) ? [home] : (DATA_DIRS[r] ?? [])))])];
    const units = unitsOf(ctx.inventory, host);
    return [
      probe('host.failed', sh`systemctl list-units --state=failed --no-legend --plain`),
      slow(probe('host.df', sh`for p in ${dirs}; do [ -d "$p" ] && printf '%s ' "$p" && df -Pk "$p" | tail -n 1; done; true`)),
      // Read with the shell's own `read` (no process started): each line as it is.
      local(probe('host.mem', raw(`${READ_LINES} </proc/meminfo`))),
      local(probe('host.load', raw(`${READ_LINES} </proc/loadavg; nproc; [ -r /run/systemd/container ] && ${READ_LINES} </run/systemd/container; true`))),
      ...(units.length ? [probe('units', sh`systemctl is-active ${units}`)] : []),
    ];
  },
  judge(ctx, results) {
    const lines: CheckLine[] = [];
    const bounds: Array<{ name: string; bound: OffsetBound }> = [];
    for (const h of ctx.inventory.hosts) {
      const why = unreachable(results, h.name);
      if (why) {
        lines.push(line('hosts', h.name, 'down', { host: h.name, reason: why, critical: false }));
        continue;
      }
      const problems: string[] = [];
      // Reached, but some probes had not ended at the deadline: each is judged "no answer" by its
      // own check; the host's line names them all.
      const mute = [...(results.get(h.name)?.outputs ?? [])].filter(([, o]) => o.code === NO_ANSWER);
      if (mute.length) problems.push(`${noAnswer(mute[0]?.[1], `${mute.length} of ${results.get(h.name)?.outputs?.size} probes`)} (${mute.map(([id]) => id).join(', ')})`);
      // The host's own probes (local commands) killed by their own timeout: what they read is unknown.
      const stuck = [...(results.get(h.name)?.outputs ?? [])].filter(([id, o]) => o.code === TIMED_OUT && HOST_PROBE_IDS.test(id));
      if (stuck.length) problems.push(timedOut(stuck[0]?.[1], stuck.map(([id]) => id).join(', ')));
      const failed = p.parseFailedUnits(out(results, h.name, 'host.failed')?.stdout ?? '');
      if (failed.length) problems.push(`failed units: ${failed.join(', ')}`);
      const disks = p.parseDf(out(results, h.name, 'host.df')?.stdout ?? '');
      for (const d of disks) if (d.usedPct >= DISK_USED_PCT) problems.push(`disk ${d.path} ${d.usedPct}% used (${Math.round(d.availKiB / 1024)} MiB free)`);
      const mem = p.parseMeminfo(out(results, h.name, 'host.mem')?.stdout ?? '');
      const memPct = mem ? Math.round((100 * mem.availableKiB) / mem.totalKiB) : undefined;
      if (memPct !== undefined && memPct < MEM_AVAILABLE_PCT) problems.push(`memory ${memPct}% available`);
      const load = p.parseLoad(out(results, h.name, 'host.load')?.stdout ?? '');
      // A container has no load average of its own: /proc/loadavg is the machine's, shared by every
      // container on it; it is shown, not judged.
      if (load && !load.container && load.load5 / load.cpus > loadThreshold(h)) problems.push(`load ${load.load5} (5 min) on ${load.cpus} CPUs, above ${loadThreshold(h)} per CPU`);
      const c = results.get(h.name)?.clock;
      if (c) bounds.push({ name: h.name, bound: { lo: c.hostMs - c.receivedAtMs, hi: c.hostMs - c.sentAtMs } });
      const maxDisk = disks.reduce((m, d) => Math.max(m, d.usedPct), 0);
      const summary = `load ${load ? `${load.load5}/${load.cpus} CPUs${load.container ? ' (the machine\'s: a container has none of its own)' : ''}` : '?'}, memory ${memPct ?? '?'}% available, disk ${maxDisk}% used at most`;
      lines.push(line('hosts', h.name, problems.length ? 'degraded' : 'healthy', { host: h.name, reason: problems.length ? problems.join('; ') : summary }));
    }
    if (bounds.length > 1) {
      // Only a difference the round trips prove counts: a busy host reads its clock late, which
      // widens its bound, never its skew.
      const skewed = skewedHosts(bounds, CLOCK_SPREAD_MS);
      const most = Math.max(...bounds.map((b) => b.bound.hi)) - Math.min(...bounds.map((b) => b.bound.lo));
      const least = Math.max(0, Math.max(...bounds.map((b) => b.bound.lo)) - Math.min(...bounds.map((b) => b.bound.hi)));
      const first = skewed[0];
      if (first) {
        const worst = first.others.reduce((a, b) => (b.skew > a.skew ? b : a));
        lines.push(line('hosts', 'clock', 'degraded', { host: first.name, reason: `${skewed.map((s) => s.name).join(', ')} ${skewed.length > 1 ? 'are' : 'is'} at least ${Math.round(worst.skew)} ms off ${first.others.map((o) => o.other).join(', ')} (at most ${CLOCK_SPREAD_MS} ms)` }));
      } else {
        lines.push(line('hosts', 'clock', 'healthy', { reason: `no clock shown more than ${CLOCK_SPREAD_MS} ms off (spread ${Math.round(least)}-${Math.round(most)} ms, as the round trips bound it)` }));
      }
    }
    return lines;
  },
};

// ---------------------------------------------------------------------------------------------
// etcd: members healthy, one leader, one raft term.

/** etcd's v3 JSON gateway paths (https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/): POSTs with a JSON body. */
const ETCD_STATUS_PATH = '/v3/maintenance/status';
const ETCD_MEMBERS_PATH = '/v3/cluster/member/list';

export const etcdCheck: StatusCheck = {
  component: 'etcd',
  probes(ctx, host) {
    if (!has(host, 'etcd')) return [];
    // The member's own HTTP endpoints (no etcdctl start): /health commits a proposal through the
    // leader (https://etcd.io/docs/v3.4/op-guide/monitoring/#health-check); the status and member
    // list come from the v3 gateway.
    // With cluster.tls: HTTPS with root's client certificate (etcd requires one).
    const base = `${scheme(ctx.inventory)}://${host.address}:${ctx.inventory.cluster.ports.etcdClient}`;
    const tls = tlsEnabled(ctx.inventory) ? ROOT_CLIENT : undefined;
    return [
      probe('etcd.health', httpGet(`${base}/health`, false, tls)),
      probe('etcd.status', httpPost(`${base}${ETCD_STATUS_PATH}`, '{}', tls)),
      ...(viewHosts(ctx.inventory, 'etcd').includes(host) ? [probe('etcd.members', httpPost(`${base}${ETCD_MEMBERS_PATH}`, '{}', tls))] : []),
    ];
  },
  judge(ctx, results) {
    const members = hostsOf(ctx.inventory, 'etcd');
    if (!members.length) return [];
    const lines: CheckLine[] = [];
    const names = new Map<string, string>();
    const statuses: Array<[Host, p.EtcdEndpointStatus]> = [];
    const body = (h: Host, id: string) => parseHttp(out(results, h.name, id)?.stdout ?? '');
    for (const h of members) for (const [id, n] of p.parseEtcdMembers(body(h, 'etcd.members').body)) names.set(id, n);
    let unknown = 0;
    for (const h of members) {
      const why = unreachable(results, h.name);
      const health = body(h, 'etcd.health');
      const st = p.parseEtcdStatus(body(h, 'etcd.status').body);
      const ok = p.parseEtcdHealth(health.status, health.body);
      if (!why && ok.healthy && st) {
        statuses.push([h, st]);
        lines.push(line('etcd', `member ${h.name}`, 'healthy', { host: h.name, reason: `${st.leader === st.memberId ? 'leader' : 'follower'}, raft term ${st.raftTerm}, etcd ${st.version}` }));
      } else if (!why && (silent(results, h.name, 'etcd.health') || (ok.healthy && silent(results, h.name, 'etcd.status')))) {
        unknown++;
        lines.push(line('etcd', `member ${h.name}`, 'degraded', { host: h.name, reason: failure(out(results, h.name, silent(results, h.name, 'etcd.health') ? 'etcd.health' : 'etcd.status'), 'GET /health') }));
      } else {
        const o = out(results, h.name, 'etcd.health');
        const reason = why ?? join(unitNotes(ctx, results, h, 'etcd'), o?.code === TIMED_OUT ? timedOut(o, 'GET /health') : ok.error ? `unhealthy: ${ok.error}` : 'unhealthy');
        lines.push(line('etcd', `member ${h.name}`, 'down', { host: h.name, reason, critical: false }));
      }
    }
    const quorum = Math.floor(members.length / 2) + 1;
    const leaders = [...new Set(statuses.map(([, s]) => s.leader).filter((l) => l !== '0'))];
    const terms = [...new Set(statuses.map(([, s]) => s.raftTerm))];
    const leaderName = (id: string) => names.get(id) ?? statuses.find(([, s]) => s.memberId === id)?.[0].name ?? id;
    if (statuses.length < quorum) {
      // Members that did not answer in time may still be healthy: quorum is unknown, not lost.
      const reason = `${statuses.length} of ${members.length} members healthy, ${quorum} needed`;
      lines.push(statuses.length + unknown >= quorum ? line('etcd', 'quorum', 'degraded', { reason: `unknown: ${reason}, ${unknown} did not answer in time` }) : line('etcd', 'quorum', 'down', { reason }));
    } else if (leaders.length !== 1) {
      lines.push(line('etcd', 'leader', 'down', { reason: leaders.length ? `members disagree on the leader: ${leaders.map(leaderName).join(', ')}` : 'no leader' }));
    } else if (terms.length > 1) {
      lines.push(line('etcd', 'leader', 'degraded', { reason: `leader ${leaderName(leaders[0] as string)} but raft terms differ: ${statuses.map(([h, s]) => `${h.name} ${s.raftTerm}`).join(', ')}` }));
    } else {
      lines.push(line('etcd', 'leader', 'healthy', { host: leaderName(leaders[0] as string), reason: `${leaderName(leaders[0] as string)}, raft term ${terms[0]}, ${statuses.length}/${members.length} healthy` }));
    }
    return lines;
  },
};

// ---------------------------------------------------------------------------------------------
// Patroni/PostgreSQL: members with role, state, timeline and lag; exactly one leader.

/** Replica states Patroni reports for a working member (`streaming` since Patroni 3.0.?; `running` before). */
const PATRONI_OK_STATES = new Set(['running', 'streaming']);

export const patroniCheck: StatusCheck = {
  component: 'patroni',
  probes(ctx, host) {
    // `/cluster` answers for every member: asked on the first two nodes only.
    if (!viewHosts(ctx.inventory, 'postgresql').includes(host)) return [];
    return [probe('patroni.cluster', httpGet(`${patroniApiUrl(ctx.inventory, host)}/cluster`, false, tlsEnabled(ctx.inventory) ? { ca: ROOT_CLIENT.ca } : undefined))];
  },
  judge(ctx, results) {
    const nodes = hostsOf(ctx.inventory, 'postgresql');
    if (!nodes.length) return [];
    const views: Array<[Host, p.PatroniMember[]]> = [];
    for (const h of nodes) {
      const r = parseHttp(out(results, h.name, 'patroni.cluster')?.stdout ?? '');
      const m = r.status === 200 ? p.parsePatroniCluster(r.body) : undefined;
      if (m) views.push([h, m]);
    }
    // The leader's own view is the freshest; otherwise any view that knows a leader; otherwise the first.
    const view =
      views.find(([h, ms]) => ms.some((m) => m.name === h.name && p.isPatroniLeader(m.role))) ??
      views.find(([, ms]) => ms.some((m) => p.isPatroniLeader(m.role))) ??
      views[0];
    const members = view?.[1] ?? [];
    const leaders = members.filter((m) => p.isPatroniLeader(m.role));
    const leaderTl = leaders[0]?.timeline;
    const lines: CheckLine[] = [];
    // No view and some member silent (not refused): the cluster's state is unknown, not down.
    const mute = nodes.filter((h) => silent(results, h.name, 'patroni.cluster'));
    for (const h of nodes) {
      const m = members.find((x) => x.name === h.name);
      const why = unreachable(results, h.name);
      if (!m) {
        if (!view && mute.includes(h)) {
          lines.push(line('patroni', `member ${h.name}`, 'degraded', { host: h.name, reason: failure(out(results, h.name, 'patroni.cluster'), 'GET /cluster') }));
          continue;
        }
        const reason = join(why, !why && unitNotes(ctx, results, h, 'postgresql'), view ? 'not in the Patroni cluster' : 'no Patroni REST API answered');
        lines.push(line('patroni', `member ${h.name}`, 'down', { host: h.name, reason, critical: false }));
        continue;
      }
      const desc = `${m.role}, ${m.state}, timeline ${m.timeline ?? '?'}${p.isPatroniLeader(m.role) ? '' : `, lag ${m.lag === undefined ? '?' : m.lag === 'unknown' ? 'unknown' : `${m.lag} B`}`}`;
      const problems: string[] = [];
      if (!PATRONI_OK_STATES.has(m.state)) problems.push(`state ${m.state}`);
      if (!p.isPatroniLeader(m.role) && (m.lag === 'unknown' || (typeof m.lag === 'number' && m.lag > PATRONI_MAX_LAG_ON_FAILOVER))) problems.push(`lag ${m.lag}${m.lag === 'unknown' ? '' : ' B'}`);
      if (leaderTl !== undefined && m.timeline !== undefined && m.timeline !== leaderTl) problems.push(`timeline ${m.timeline}, the leader's is ${leaderTl}`);
      if (why) problems.unshift(why);
      const verdict: Verdict = problems.length === 0 ? 'healthy' : PATRONI_OK_STATES.has(m.state) && !why ? 'degraded' : 'down';
      lines.push(line('patroni', `member ${h.name}`, verdict, { host: h.name, reason: problems.length ? join(...problems, desc) : desc, critical: false }));
    }
    if (!view && mute.length) lines.push(line('patroni', 'leader', 'degraded', { reason: `unknown: no Patroni REST API answered in time (${mute.map((h) => h.name).join(', ')} silent)` }));
    else if (!view) lines.push(line('patroni', 'leader', 'down', { reason: 'no Patroni REST API answered' }));
    else if (leaders.length === 1) lines.push(line('patroni', 'leader', 'healthy', { host: leaders[0]?.name, reason: `${leaders[0]?.name} (timeline ${leaderTl ?? '?'})` }));
    else lines.push(line('patroni', 'leader', 'down', { reason: leaders.length ? `${leaders.length} leaders: ${leaders.map((l) => l.name).join(', ')}` : 'no leader (failover under way, or no quorum in etcd)' }));
    // Synchronous mode on (src/components/patroni.ts patroniDcs): which replica every commit waits for;
    // none is degraded, not down: the leader still serves (strict mode: its writes wait).
    const dcs = patroniDcs(ctx.inventory);
    if (dcs.synchronous_mode && leaders.length === 1) {
      const sync = members.filter((m) => m.role === 'sync_standby');
      if (sync.length) lines.push(line('patroni', 'synchronous standby', 'healthy', { host: sync[0]?.name, reason: `${sync.map((m) => m.name).join(', ')}: a commit is acknowledged once it has it` }));
      else
        lines.push(
          line('patroni', 'synchronous standby', 'degraded', {
            reason: dcs.synchronous_mode_strict
              ? 'none: synchronous mode is strict, so writes wait until a replica is synchronous again'
              : 'none: synchronous mode is on but no replica is synchronous; commits are acknowledged without a copy until one catches up',
          }),
        );
    }
    return lines;
  },
};

// ---------------------------------------------------------------------------------------------
// HAProxy: each listener's servers from `show stat`; the leader port reaching exactly one server.

/** The listeners of templates/haproxy/haproxy.cfg.njk. */
export const LEADER_LISTENER = 'postgres_leader';
export const REPLICA_LISTENER = 'postgres_replica';

/** Python (stdlib) printing `show stat` from HAProxy's admin socket at argv[1] (management guide "9.3 Unix Socket commands"). */
const SHOW_STAT = `${HAPROXY_ASK_PY}\nimport sys\nsys.stdout.write(ask(sys.argv[1], "show stat"))\n`;

/**
 * PostgreSQL's SSLRequest message (protocol "Message Formats": length 8, code 80877103), as printf
 * bytes: a server answers one byte, `N` or `S`, before any authentication, so the write path is
 * proven to end at a PostgreSQL primary without a password or a session (a client that then closes
 * is not logged: postmaster "no data at all" case).
 * https://www.postgresql.org/docs/15/protocol-message-formats.html
 */
const PG_SSL_REQUEST = '\\x00\\x00\\x00\\x08\\x04\\xd2\\x16\\x2f';

/** Roles whose hosts check the write path through the VIP: the load balancers and the schedulers (the database's clients). */
const WRITE_PATH_ROLES: readonly Role[] = ['haproxy', 'scheduler'];

/** Where the write path is checked: the haproxy VIP's leader port, or (no VIP) the first HAProxy host's. */
function writePathTarget(inv: Inventory): { address: string; port: number } | undefined {
  const vip = inv.cluster.vips.find((v) => v.role === 'haproxy');
  const address = vip?.address ?? hostsOf(inv, 'haproxy')[0]?.address;
  return address ? { address, port: inv.cluster.ports.haproxyLeader } : undefined;
}

export const haproxyCheck: StatusCheck = {
  component: 'haproxy',
  probes(ctx, host) {
    const probes: Probe[] = [];
    const target = writePathTarget(ctx.inventory);
    if (target && viewHosts(ctx.inventory, WRITE_PATH_ROLES).includes(host)) probes.push(probe('haproxy.write', tcpProbe(target.address, target.port, 2, PG_SSL_REQUEST)));
    if (!has(host, 'haproxy')) return probes;
    // The stats page in CSV (HAProxy management guide "9.1 CSV format"), the same table as the
    // admin socket's `show stat`; without the secrets file, the socket (Debian's or RHEL's path).
    // With cluster.tls the page is HTTPS on the network and plain HTTP on 127.0.0.1 only.
    const stats = `http://${tlsEnabled(ctx.inventory) ? '127.0.0.1' : host.address}:${ctx.inventory.cluster.ports.haproxyStats}/;csv`;
    probes.push(
      ctx.secrets
        ? basicAuthGet('haproxy.stat', stats, HAPROXY_STATS_USER, ctx.secrets.haproxyStats)
        : probe('haproxy.stat', sh`for s in ${[haproxyStatsSocket('debian'), haproxyStatsSocket('rhel')]}; do if [ -S "$s" ]; then exec python3 -c ${SHOW_STAT} "$s"; fi; done; exit 1`),
    );
    return probes;
  },
  judge(ctx, results) {
    const lbs = hostsOf(ctx.inventory, 'haproxy');
    if (!lbs.length) return [];
    const lines: CheckLine[] = [writePathLine(ctx, results)];
    const leaderUp = new Map<string, string[]>();
    for (const h of lbs) {
      const why = unreachable(results, h.name);
      const o = out(results, h.name, 'haproxy.stat');
      const servers = o?.code === 0 ? p.parseHaproxyStat(ctx.secrets ? parseHttp(o.stdout).body : o.stdout) : [];
      if (!why && o?.code === NO_ANSWER) {
        lines.push(line('haproxy', `haproxy ${h.name}`, 'degraded', { host: h.name, reason: failure(o, 'stats') }));
        continue;
      }
      if (why || !servers.length) {
        lines.push(line('haproxy', `haproxy ${h.name}`, 'down', { host: h.name, reason: why ?? join(unitNotes(ctx, results, h, 'haproxy').split(', ').filter((s) => s.startsWith('haproxy')).join(', '), failure(o, 'stats')), critical: false }));
        continue;
      }
      const up = (px: string) => servers.filter((s) => s.proxy === px && s.status.startsWith('UP')).map((s) => s.server);
      const all = (px: string) => servers.filter((s) => s.proxy === px).map((s) => s.server);
      const lead = up(LEADER_LISTENER);
      leaderUp.set(h.name, lead);
      const replicaDown = all(REPLICA_LISTENER).filter((s) => !up(REPLICA_LISTENER).includes(s) && !lead.includes(s));
      const desc = `${LEADER_LISTENER} -> ${lead.join(', ') || 'none'}; ${REPLICA_LISTENER} ${up(REPLICA_LISTENER).length}/${all(REPLICA_LISTENER).length} UP`;
      if (lead.length !== 1) lines.push(line('haproxy', `haproxy ${h.name}`, 'down', { host: h.name, reason: `${LEADER_LISTENER}: ${lead.length} servers UP (${lead.join(', ') || 'none'}); ${desc}`, critical: false }));
      else if (replicaDown.length) lines.push(line('haproxy', `haproxy ${h.name}`, 'degraded', { host: h.name, reason: `${REPLICA_LISTENER}: ${replicaDown.join(', ')} DOWN; ${desc}` }));
      else lines.push(line('haproxy', `haproxy ${h.name}`, 'healthy', { host: h.name, reason: desc }));
    }
    const port = ctx.inventory.cluster.ports.haproxyLeader;
    const good = [...leaderUp].filter(([, s]) => s.length === 1);
    const targets = new Set(good.map(([, s]) => s[0]));
    const mute = lbs.filter((h) => silent(results, h.name, 'haproxy.stat'));
    if (!good.length && mute.length) lines.push(line('haproxy', `leader port ${port}`, 'degraded', { reason: `unknown: ${mute.map((h) => h.name).join(', ')} did not answer in time` }));
    else if (!good.length) lines.push(line('haproxy', `leader port ${port}`, 'down', { reason: `no HAProxy routes port ${port} to exactly one server` }));
    else if (targets.size > 1) lines.push(line('haproxy', `leader port ${port}`, 'down', { reason: `HAProxy hosts route port ${port} to different servers: ${good.map(([h, s]) => `${h} -> ${s[0]}`).join(', ')}` }));
    else lines.push(line('haproxy', `leader port ${port}`, 'healthy', { reason: `-> ${[...targets][0]} on ${good.length}/${lbs.length} HAProxy hosts` }));
    return lines;
  },
};

/**
 * The write path, a serving path: a PostgreSQL primary answers through the VIP's leader port, seen
 * from any checking host (`healthy`); `down` only when a host observed it fail and none succeeded;
 * `degraded` (unknown) when no checking host answered in time or was reached.
 */
function writePathLine(ctx: StatusContext, results: Results): CheckLine {
  const target = writePathTarget(ctx.inventory) as { address: string; port: number };
  const check = `write path ${target.address}:${target.port}`;
  const from = viewHosts(ctx.inventory, WRITE_PATH_ROLES);
  const ok = from.filter((h) => /^(4e|53)$/.test(out(results, h.name, 'haproxy.write')?.stdout.trim() ?? ''));
  const failed = from.filter((h) => !ok.includes(h) && !unreachable(results, h.name) && !silent(results, h.name, 'haproxy.write'));
  if (ok.length) return line('haproxy', check, 'healthy', { servingPath: true, reason: `a PostgreSQL primary answers (from ${ok.map((h) => h.name).join(', ')})` });
  if (failed.length) return line('haproxy', check, 'down', { servingPath: true, reason: `no PostgreSQL answers through ${target.address}:${target.port} (from ${failed.map((h) => h.name).join(', ')})` });
  return line('haproxy', check, 'degraded', { servingPath: true, reason: `unknown: none of ${from.map((h) => h.name).join(', ')} answered in time or was reached` });
}

// ---------------------------------------------------------------------------------------------
// keepalived: each VIP on exactly one host of its role, and answering.

/** The TCP port a VIP of each role must answer on. */
export function vipPort(inv: Inventory, vip: Vip): number | undefined {
  return vip.role === 'haproxy' ? inv.cluster.ports.haproxyLeader : vip.role === 'nfs' ? 2049 : undefined;
}

/** The VIPs keepalived holds: an nfs VIP only when the DAGs are on NFS (in mode sync nothing holds it). */
function vipsInUse(inv: Inventory): Vip[] {
  return inv.cluster.vips.filter((v) => v.role !== 'nfs' || dagsMode(inv) === 'nfs');
}

export const keepalivedCheck: StatusCheck = {
  component: 'keepalived',
  probes(ctx, host) {
    const vips = vipsInUse(ctx.inventory).filter((v) => has(host, v.role));
    if (!vips.length) return [];
    return [
      probe('keepalived.addr', sh`ip -br -4 addr`),
      ...vips.flatMap((v) => {
        const port = vipPort(ctx.inventory, v);
        return port ? [probe(`keepalived.answer:${v.name}`, tcpProbe(v.address, port, 2))] : [];
      }),
    ];
  },
  judge(ctx, results) {
    const lines: CheckLine[] = [];
    for (const v of vipsInUse(ctx.inventory)) {
      const hosts = hostsOf(ctx.inventory, v.role);
      const reached = hosts.filter((h) => !unreachable(results, h.name));
      const holders = reached.filter((h) => p.parseIpBrief(out(results, h.name, 'keepalived.addr')?.stdout ?? '').includes(v.address)).map((h) => h.name);
      const port = vipPort(ctx.inventory, v);
      const answer = (h: Host) => out(results, h.name, `keepalived.answer:${v.name}`);
      const answers = port ? reached.some((h) => answer(h)?.code === 0) : true;
      // "Does not answer" is said only when a host saw the port refuse or time out; silent probes say nothing.
      const refused = reached.some((h) => answer(h) !== undefined && answer(h)?.code !== 0 && answer(h)?.code !== NO_ANSWER);
      // A host whose `ip` gave no answer (cut off, or killed by its timeout) may hold the VIP or not: unknown.
      const mute = reached.filter((h) => localUnanswered(out(results, h.name, 'keepalived.addr')));
      const muteWhy = mute.map((h) => `${h.name}: ${failure(out(results, h.name, 'keepalived.addr'), 'ip -br -4 addr')}`).join(', ');
      const unknown = hosts.length - reached.length;
      const check = `vip ${v.name} ${v.address}`;
      const noAnswer = port && !answers && refused ? `does not answer on port ${port}` : '';
      if (holders.length === 1) {
        const kaDown = reached.filter((h) => !out(results, h.name, 'units') || p.parseIsActive(out(results, h.name, 'units')?.stdout ?? '', unitsOf(ctx.inventory, h))['keepalived.service'] !== 'active').map((h) => h.name);
        const holderIsFirst = holders[0] === hosts[0]?.name;
        const problems = [noAnswer, unknown ? `${unknown} of its hosts unreachable` : '', mute.length ? `a second holder is unknown (${muteWhy})` : '', kaDown.length ? `keepalived not active on ${kaDown.join(', ')}` : ''].filter(Boolean);
        lines.push(
          line('keepalived', check, noAnswer ? 'down' : problems.length ? 'degraded' : 'healthy', {
            host: holders[0],
            reason: join(`held by ${holders[0]}${holderIsFirst ? '' : ' (failed over)'}`, ...problems, port && answers ? `answers on ${port}` : ''),
          }),
        );
      } else if (holders.length > 1) {
        lines.push(line('keepalived', check, 'down', { reason: `held by ${holders.length} hosts: ${holders.join(', ')} (split brain)` }));
      } else if (mute.length) {
        lines.push(line('keepalived', check, 'degraded', { reason: join(`unknown: held by none of the hosts that answered (${muteWhy})`, unknown ? `${unknown} unreachable` : '') }));
      } else {
        lines.push(line('keepalived', check, 'down', { reason: join(`held by none of ${hosts.map((h) => h.name).join(', ')}`, unknown ? `${unknown} unreachable` : '', noAnswer) }));
      }
    }
    return lines;
  },
};

// ---------------------------------------------------------------------------------------------
// RabbitMQ: nodes running, partitions, alarms; queue depth per Airflow queue.

/** The Celery queues the inventory's workers consume (`queues`, default `default`: Airflow's [operators] default_queue). */
export function airflowQueues(inv: Inventory): string[] {
  return [...new Set(hostsOf(inv, 'worker').flatMap(workerQueues))];
}

/** The cluster-wide views of the management API (nodes, queues, consumers), asked on the first RabbitMQ hosts ({@link viewHosts}). */
function rabbitViewHosts(inv: Inventory): Host[] {
  return viewHosts(inv, 'rabbitmq');
}

/** The consumers of the Airflow vhost (queue, the client's address) from the first view that answered; undefined when none did. */
function rabbitConsumers(ctx: StatusContext, results: Results): p.RabbitConsumer[] | undefined {
  for (const h of rabbitViewHosts(ctx.inventory)) {
    const r = parseHttp(out(results, h.name, 'rabbitmq.consumers')?.stdout ?? '');
    const c = r.status === 200 ? p.parseRabbitConsumers(r.body) : undefined;
    if (c) return c;
  }
  return undefined;
}

export const rabbitmqCheck: StatusCheck = {
  component: 'rabbitmq',
  probes(ctx, host) {
    if (!has(host, 'rabbitmq')) return [];
    // Every node: does it accept AMQP connections (a TCP connect, no login, nothing logged)?
    const probes = [probe('rabbitmq.listener', tcpProbe(host.address, brokerPort(ctx.inventory), 2))];
    if (!ctx.secrets || !rabbitViewHosts(ctx.inventory).includes(host)) return probes;
    const pw = ctx.secrets.rabbitmqAdmin;
    const base = `http://127.0.0.1:${ctx.inventory.cluster.ports.rabbitmqManagement}/api`;
    const vhost = encodeURIComponent(AIRFLOW_VHOST);
    return [
      ...probes,
      basicAuthGet('rabbitmq.nodes', `${base}/nodes?columns=name,running,partitions,mem_alarm,disk_free_alarm`, ADMIN_USER, pw),
      basicAuthGet('rabbitmq.queues', `${base}/queues/${vhost}?columns=name,messages,consumers,type,state,node,leader`, ADMIN_USER, pw),
      basicAuthGet('rabbitmq.consumers', `${base}/consumers/${vhost}`, ADMIN_USER, pw),
    ];
  },
  judge(ctx, results) {
    const hosts = hostsOf(ctx.inventory, 'rabbitmq');
    if (!hosts.length) return [];
    const broker = brokerLine(ctx, results, hosts);
    if (!ctx.secrets) return [broker, line('rabbitmq', 'management API', 'degraded', { reason: 'no secrets file in the state folder: cannot authenticate (run bootstrap first)' })];
    const nodeViews: p.RabbitNode[][] = [];
    let queues: p.RabbitQueue[] | undefined;
    const apiErrors: string[] = [];
    const viewHosts = rabbitViewHosts(ctx.inventory);
    for (const h of viewHosts) {
      const n = parseHttp(out(results, h.name, 'rabbitmq.nodes')?.stdout ?? '');
      const parsed = n.status === 200 ? p.parseRabbitNodes(n.body) : undefined;
      if (parsed) nodeViews.push(parsed);
      else if (!unreachable(results, h.name)) apiErrors.push(`${h.name}: ${n.status ? `HTTP ${n.status}` : silent(results, h.name, 'rabbitmq.nodes') ? failure(out(results, h.name, 'rabbitmq.nodes'), 'GET /api/nodes') : 'no answer'}`);
      const q = parseHttp(out(results, h.name, 'rabbitmq.queues')?.stdout ?? '');
      if (!queues && q.status === 200) queues = p.parseRabbitQueues(q.body);
    }
    const lines: CheckLine[] = [broker];
    // Without any cluster view (the view hosts silent or unreachable), a node's state is unknown.
    const viewless = nodeViews.length === 0;
    let running = 0;
    for (const h of hosts) {
      const name = nodeName(h);
      const seen = nodeViews.flatMap((v) => v.filter((n) => n.name === name));
      const up = seen.find((n) => n.running);
      const gone = unreachable(results, h.name);
      if (gone) {
        // Peers notice a vanished node only after net_ticktime (60 s by default): say what they say.
        lines.push(line('rabbitmq', `node ${name}`, 'down', { host: h.name, reason: `${gone}; its peers ${up ? 'still list it as running (until net_ticktime passes)' : 'list it as not running'}`, critical: false }));
        if (up) running++;
      } else if (up) {
        running++;
        const problems = [up.partitions.length ? `partitioned from ${up.partitions.join(', ')}` : '', up.memAlarm ? 'memory alarm' : '', up.diskAlarm ? 'disk alarm' : ''].filter(Boolean);
        lines.push(line('rabbitmq', `node ${name}`, problems.length ? 'degraded' : 'healthy', { host: h.name, reason: problems.length ? problems.join('; ') : 'running' }));
      } else if (viewless) {
        lines.push(line('rabbitmq', `node ${name}`, 'degraded', { host: h.name, reason: join('unknown: no management API view', apiErrors.join(', '), unitNotes(ctx, results, h, 'rabbitmq')) }));
      } else {
        lines.push(line('rabbitmq', `node ${name}`, 'down', { host: h.name, reason: join('not running', unitNotes(ctx, results, h, 'rabbitmq')), critical: false }));
      }
    }
    if (viewless) return lines;
    lines.push(
      running === 0
        ? line('rabbitmq', 'cluster', 'down', { reason: join('no node running', apiErrors.length ? `management API: ${apiErrors.join(', ')}` : '') })
        : line('rabbitmq', 'cluster', 'healthy', { reason: `${running}/${hosts.length} nodes running` }),
    );
    const expected = airflowQueues(ctx.inventory);
    const present = (queues ?? []).filter((q) => !p.isCeleryInternalQueue(q.name));
    for (const name of [...new Set([...expected, ...present.map((q) => q.name)])].sort()) {
      const q = present.find((x) => x.name === name);
      const check = `queue ${name}`;
      if (!q) {
        if (queues) lines.push(line('rabbitmq', check, 'degraded', { reason: `not declared in vhost ${AIRFLOW_VHOST}: no worker has consumed it yet` }));
        continue;
      }
      const desc = `${q.messages} messages, ${q.consumers} consumers, ${q.type}${q.node ? ` on ${q.node}` : ''}`;
      // The drill's load queue has no consumer by design until the drill reads it back at its end:
      // only its state counts, so a drill's wait for healthy between scenarios is not held up by it.
      if (name === DRILL_OBJECTS.queue && q.state === 'running') lines.push(line('rabbitmq', check, 'healthy', { reason: `airflow-ha drill's load queue (not an Airflow queue); ${desc}` }));
      else if (q.state !== 'running') lines.push(line('rabbitmq', check, 'degraded', { reason: `state ${q.state}; ${desc}` }));
      else if (q.consumers === 0) lines.push(line('rabbitmq', check, 'degraded', { reason: `no consumer (no worker consumes it); ${desc}` }));
      else lines.push(line('rabbitmq', check, 'healthy', { reason: desc }));
    }
    return lines;
  },
};

/**
 * The broker, a serving path: some RabbitMQ node accepts AMQP connections (`healthy`); `down` only
 * when every node that answered refused and none accepted; `degraded` (unknown) when none answered.
 */
function brokerLine(ctx: StatusContext, results: Results, hosts: readonly Host[]): CheckLine {
  const port = brokerPort(ctx.inventory);
  const code = (h: Host) => out(results, h.name, 'rabbitmq.listener')?.code;
  const accepting = hosts.filter((h) => code(h) === 0);
  const refusing = hosts.filter((h) => !unreachable(results, h.name) && code(h) !== undefined && code(h) !== 0 && code(h) !== NO_ANSWER);
  if (accepting.length) return line('rabbitmq', 'broker', 'healthy', { servingPath: true, reason: `${accepting.length}/${hosts.length} nodes accept connections on ${port}` });
  if (refusing.length) return line('rabbitmq', 'broker', 'down', { servingPath: true, reason: `no node accepts connections on ${port} (${refusing.map((h) => h.name).join(', ')} refused${refusing.length < hosts.length ? `; the others unknown` : ''})` });
  return line('rabbitmq', 'broker', 'degraded', { servingPath: true, reason: `unknown: no RabbitMQ node answered in time or was reached` });
}

// ---------------------------------------------------------------------------------------------
// Airflow: scheduler/triggerer/DAG processor heartbeats (from the metadata database), webserver
// /health directly and through the VIP, each Celery worker answering with its queues, Flower.

/** The Airflow jobs whose heartbeats status reads, with the hosts that run each and their label. */
type JobType = 'SchedulerJob' | 'TriggererJob' | 'DagProcessorJob';

/**
 * Seconds since its last heartbeat within which Airflow 2.x counts a job alive (`Job.is_alive`,
 * airflow/jobs/job.py): `[scheduler] scheduler_health_check_threshold` (default 30) for the
 * scheduler, `job_heartbeat_sec` (default 5) x 2.1 for the others. airflow.cfg of airflow-ha keeps
 * those defaults (templates/airflow/airflow.cfg.njk).
 * https://airflow.apache.org/docs/apache-airflow/2.9.0/configurations-ref.html
 */
export const HEARTBEAT_ALIVE_SEC: Readonly<Record<JobType, number>> = { SchedulerJob: 30, TriggererJob: 10.5, DagProcessorJob: 10.5 };

interface JobKind {
  job: JobType;
  label: string;
  /** The Airflow service that runs this job: its own unit stopped means the job is gone, whatever its last heartbeat. */
  service: AirflowServiceKind;
  /** Role whose unit state is named when the job is not alive. */
  role: Role;
  /** Whether the cluster stops serving without any live job of this kind. */
  serving: boolean;
  hosts(inv: Inventory): Host[];
}

const JOBS: readonly JobKind[] = [
  { job: 'SchedulerJob', label: 'scheduler', service: 'scheduler', role: 'scheduler', serving: true, hosts: (inv) => hostsOf(inv, 'scheduler') },
  { job: 'TriggererJob', label: 'triggerer', service: 'triggerer', role: 'triggerer', serving: false, hosts: triggererHosts },
  { job: 'DagProcessorJob', label: 'dag processor', service: 'dag-processor', role: 'dag_processor', serving: false, hosts: dagProcessorHosts },
];

/**
 * The heartbeat query, run with psql on each PostgreSQL node (one query answers for every Airflow
 * host, instead of an `airflow jobs check` start per host and job): first whether this node is the
 * primary, then per running job type and host the seconds since its latest heartbeat. The `job`
 * table and its columns are Airflow's (airflow/jobs/job.py, `Job.__tablename__ = "job"`).
 */
export const HEARTBEAT_SQL = [
  "select case when pg_is_in_recovery() then 'replica' else 'primary' end",
  `select job_type, hostname, round(extract(epoch from now() - max(latest_heartbeat))::numeric, 1) from job where state = 'running' and job_type in (${JOBS.map((j) => `'${j.job}'`).join(', ')}) group by job_type, hostname`,
] as const;

/** Whether the heartbeats of {@link JOBS} are read: some host runs a scheduler, triggerer or DAG processor. */
function hasJobs(inv: Inventory): boolean {
  return JOBS.some((k) => k.hosts(inv).length > 0);
}

/**
 * The installed distribution's core metadata (PEP 566: `Version:` and `Summary:` lines of the
 * `apache_airflow-*.dist-info/METADATA` in the virtualenv): which Airflow each host really runs,
 * and whether it is the lab's stand-in (its Summary says so, test/standin/build_wheel.py).
 */
const releaseProbe = (inv: Inventory): Probe =>
  local(slow(probe('airflow.release', sh`sed -n -e 's/^Version: //p' -e 's/^Summary: //p' ${raw(airflowMetadataGlob(airflowPaths(inv).venv))} 2>/dev/null | head -n 2`)));

/** Words of the lab stand-in's Summary (test/standin/build_wheel.py): never Apache Airflow. */
const STANDIN_MARK = /stand-in/i;

export const airflowCheck: StatusCheck = {
  component: 'airflow',
  probes(ctx, host) {
    const inv = ctx.inventory;
    const probes: Probe[] = airflowHosts(inv).includes(host) ? [releaseProbe(inv)] : [];
    if (viewHosts(inv, 'postgresql').includes(host) && hasJobs(inv)) {
      // From / : psql as postgres warns on stderr when it cannot enter the login user's folder.
      probes.push(probe('airflow.heartbeats', sh`cd / && ${psql(inv, AIRFLOW_DB)} ${HEARTBEAT_SQL.flatMap((q) => ['-c', q])} 2>&1`));
    }
    const vip = inv.cluster.vips.find((v) => v.role === 'haproxy');
    const healthPath = airflowLayout(inv.cluster.versions.airflow).healthPath;
    if (has(host, 'webserver')) {
      // cluster.tls: the UI servers and the VIP's frontend speak HTTPS, verified against the cluster CA.
      const ca = tlsEnabled(inv) ? { ca: ROOT_CLIENT.ca } : undefined;
      probes.push(probe('airflow.health.direct', httpGet(`${scheme(inv)}://${host.address}:${inv.cluster.ports.webserver}${healthPath}`, false, ca)));
      // Through the VIP: the UI's own URL (base_url's, by address).
      if (vip) probes.push(probe('airflow.health.vip', httpGet(`${webserverFrontendUrl(inv, true)}${healthPath}`, false, ca)));
    }
    if (has(host, 'flower')) {
      // Flower runs with --basic-auth (src/components/airflow.ts): the check logs in like an operator.
      const url = `http://${host.address}:${inv.cluster.ports.flower}/healthcheck`;
      probes.push(ctx.secrets ? basicAuthGet('airflow.flower', url, FLOWER_USER, ctx.secrets.flowerBasicAuth) : probe('airflow.flower', httpGet(url)));
    }
    return probes;
  },
  judge(ctx, results) {
    return judgeAirflow(ctx, results);
  },
};

/** The heartbeat table from the primary's answer (else a replica's), or why none could be read. */
function heartbeats(ctx: StatusContext, results: Results): { rows: p.JobHeartbeat[] } | { error: string } {
  const answers: p.Heartbeats[] = [];
  const errors: string[] = [];
  for (const h of viewHosts(ctx.inventory, 'postgresql')) {
    const o = out(results, h.name, 'airflow.heartbeats');
    const hb = o && o.code === 0 ? p.parseHeartbeats(o.stdout) : undefined;
    if (hb) answers.push(hb);
    else if (!unreachable(results, h.name)) errors.push(`${h.name}: ${failure(o, 'psql')}`);
  }
  const best = answers.find((a) => a.node === 'primary') ?? answers[0];
  if (best) return { rows: best.rows };
  return { error: errors.length ? `metadata database not readable (${errors.join('; ')})` : 'no PostgreSQL node reached' };
}

/**
 * The `release` line: the Airflow distribution the hosts run, as their metadata says. The lab's
 * stand-in is named as such ("Airflow stand-in, not Apache Airflow") on every screen that shows it;
 * hosts that run different versions (an upgrade half done) degrade the line.
 */
function releaseLine(ctx: StatusContext, results: Results): CheckLine | undefined {
  const hosts = airflowHosts(ctx.inventory);
  const seen = new Map<string, string[]>();
  for (const h of hosts) {
    const [version, summary = ''] = (out(results, h.name, 'airflow.release')?.stdout ?? '').split('\n');
    if (!version) continue;
    const what = STANDIN_MARK.test(summary) ? `Airflow stand-in, not Apache Airflow (it calls itself ${version})` : `Apache Airflow ${version}`;
    seen.set(what, [...(seen.get(what) ?? []), h.name]);
  }
  if (!seen.size) return hosts.length ? line('airflow', 'release', 'degraded', { reason: 'no Airflow host reports an installed apache-airflow distribution' }) : undefined;
  const kinds = [...seen];
  const expected = ctx.inventory.cluster.versions.airflow;
  if (kinds.length === 1) {
    const [what, on] = kinds[0] as [string, string[]];
    const missing = hosts.length - on.length;
    return line('airflow', 'release', missing ? 'degraded' : 'healthy', { reason: `${what} on ${on.length} hosts${missing ? `; ${missing} report none` : ''}${what.includes(`${expected}`) ? '' : ` (the inventory asks for ${expected})`}` });
  }
  return line('airflow', 'release', 'degraded', { reason: `hosts differ: ${kinds.map(([what, on]) => `${what} on ${on.join(', ')}`).join('; ')}` });
}

function judgeAirflow(ctx: StatusContext, results: Results): CheckLine[] {
  const inv = ctx.inventory;
  const release = releaseLine(ctx, results);
  const lines: CheckLine[] = release ? [release] : [];
  const beats = hasJobs(inv) ? heartbeats(ctx, results) : { rows: [] };
  for (const kind of JOBS) {
    const hosts = kind.hosts(inv);
    if (!hosts.length) continue;
    const limit = HEARTBEAT_ALIVE_SEC[kind.job];
    const kindLines: CheckLine[] = [];
    let alive = 0;
    for (const h of hosts) {
      const check = `${kind.label} ${h.name}`;
      const why = unreachable(results, h.name);
      if ('error' in beats) {
        // Unknown is not down: the webserver's /health (judged below) still speaks for the scheduler.
        const notes = why ?? unitNotes(ctx, results, h, kind.role);
        kindLines.push(line('airflow', check, notes ? 'down' : 'degraded', { host: h.name, reason: join(notes, `heartbeat unknown: ${beats.error}`), critical: false }));
        continue;
      }
      const age = p.heartbeatAge(beats.rows, kind.job, h.name);
      // A job whose unit is stopped is gone even while its last heartbeat is still young (a
      // scheduler's counts as alive for 30 s): the unit's state is the quicker witness.
      const stopped = why ? '' : serviceStopped(ctx, results, h, kind.service);
      if (stopped && age !== undefined && age < limit) {
        kindLines.push(line('airflow', check, 'down', { host: h.name, reason: `${stopped}; last heartbeat ${Math.max(0, age)} s ago, from before it stopped`, critical: false }));
      } else if (age !== undefined && age < limit) {
        alive++;
        kindLines.push(line('airflow', check, 'healthy', { host: h.name, reason: `heartbeat ${Math.max(0, age)} s ago` }));
      } else {
        const last = age === undefined ? `no running ${kind.job} from ${h.name}` : `last heartbeat ${age} s ago (alive within ${limit} s)`;
        kindLines.push(line('airflow', check, 'down', { host: h.name, reason: join(why ?? unitNotes(ctx, results, h, kind.role), last), critical: false }));
      }
    }
    // DAG processors are active/standby (one holds the etcd lock): a reachable one without a
    // heartbeat whose unit runs, while another heartbeats, is the standby.
    if (kind.job === 'DagProcessorJob' && alive > 0) {
      for (const l of kindLines) {
        const h = hosts.find((x) => x.name === l.host);
        if (h && l.verdict === 'down' && !unreachable(results, h.name) && !unitNotes(ctx, results, h, kind.role)) Object.assign(l, line('airflow', l.check, 'healthy', { host: h.name, reason: 'standby (waits for the etcd lock the active one holds)' }));
      }
    }
    lines.push(...kindLines);
    if (!alive) {
      if ('error' in beats) lines.push(line('airflow', `${kind.label}s`, 'degraded', { reason: `heartbeats unknown: ${beats.error}` }));
      else lines.push(line('airflow', `${kind.label}s`, kind.serving ? 'down' : 'degraded', { reason: `no ${kind.label} heartbeat on any of ${hosts.length} hosts` }));
    }
  }
  const webs = hostsOf(inv, 'webserver');
  const healthPath = airflowLayout(inv.cluster.versions.airflow).healthPath;
  if (webs.length) {
    for (const h of webs) {
      const r = parseHttp(out(results, h.name, 'airflow.health.direct')?.stdout ?? '');
      const health = r.status === 200 ? p.parseAirflowHealth(r.body) : undefined;
      const why = unreachable(results, h.name);
      if (!why && silent(results, h.name, 'airflow.health.direct')) lines.push(line('airflow', `webserver ${h.name}`, 'degraded', { host: h.name, reason: failure(out(results, h.name, 'airflow.health.direct'), `GET ${healthPath}`) }));
      else lines.push(health ? line('airflow', `webserver ${h.name}`, 'healthy', { host: h.name, reason: `GET ${healthPath} answers` }) : line('airflow', `webserver ${h.name}`, 'down', { host: h.name, reason: why ?? join(unitNotes(ctx, results, h, 'webserver'), r.status ? `GET ${healthPath}: HTTP ${r.status}` : `GET ${healthPath}: no answer`), critical: false }));
    }
    const vip = inv.cluster.vips.find((v) => v.role === 'haproxy');
    if (vip) {
      const answers = webs.map((h) => parseHttp(out(results, h.name, 'airflow.health.vip')?.stdout ?? '')).find((r) => r.status === 200);
      const health = answers ? p.parseAirflowHealth(answers.body) : undefined;
      const check = `webserver ${healthPath} via ${vip.address}`;
      // Observed: some webserver host asked through the VIP and its probe ended (not cut off).
      const asked = webs.filter((h) => !unreachable(results, h.name) && out(results, h.name, 'airflow.health.vip') && !silent(results, h.name, 'airflow.health.vip'));
      if (!health && !answers && !asked.length) lines.push(line('airflow', check, 'degraded', { servingPath: true, reason: `unknown: no webserver host answered in time or was reached` }));
      else if (!health) lines.push(line('airflow', check, 'down', { servingPath: true, reason: answers ? `GET ${healthPath}: not Airflow health JSON` : `GET ${healthPath} through the VIP: no answer` }));
      else {
        const bad = Object.entries(health).filter(([, s]) => s !== null && s !== 'healthy');
        const fatal = bad.some(([k]) => k === 'metadatabase' || k === 'scheduler');
        lines.push(line('airflow', check, bad.length ? (fatal ? 'down' : 'degraded') : 'healthy', { servingPath: true, reason: bad.length ? bad.map(([k, s]) => `${k} ${s}`).join(', ') : Object.entries(health).filter(([, s]) => s).map(([k, s]) => `${k} ${s}`).join(', ') }));
      }
    }
  }
  // Workers: each expected queue consumed by a client from the worker's address, as the broker's
  // management API lists its consumers (no Celery or Python start per worker).
  const consumers = rabbitConsumers(ctx, results);
  for (const h of hostsOf(inv, 'worker')) {
    const node = celeryNode(h);
    const why = unreachable(results, h.name);
    const units = why ? '' : unitNotes(ctx, results, h, 'worker');
    if (!consumers) {
      lines.push(line('airflow', `worker ${node}`, units ? 'down' : 'degraded', { host: h.name, reason: join(why, units, 'queues unknown: no RabbitMQ management API view'), critical: false }));
      continue;
    }
    const qs = [...new Set(consumers.filter((c) => c.peerHost === h.address && !p.isCeleryInternalQueue(c.queue)).map((c) => c.queue))].sort();
    const missing = workerQueues(h).filter((q) => !qs.includes(q));
    if (!qs.length) lines.push(line('airflow', `worker ${node}`, 'down', { host: h.name, reason: join(why, units, `consumes no queue on the broker (expected ${workerQueues(h).join(', ')})`), critical: false }));
    else if (missing.length) lines.push(line('airflow', `worker ${node}`, 'degraded', { host: h.name, reason: `does not consume ${missing.join(', ')}; consumes ${qs.join(', ')}` }));
    else lines.push(line('airflow', `worker ${node}`, 'healthy', { host: h.name, reason: join(`consumes ${qs.join(', ')}`, why) }));
  }
  for (const h of hostsOf(inv, 'flower')) {
    const r = parseHttp(out(results, h.name, 'airflow.flower')?.stdout ?? '');
    const ok = r.status === 200 && r.body.trim() === 'OK';
    lines.push(ok ? line('airflow', `flower ${h.name}`, 'healthy', { host: h.name, reason: 'GET /healthcheck OK' }) : line('airflow', `flower ${h.name}`, 'degraded', { host: h.name, reason: unreachable(results, h.name) ?? join(unitNotes(ctx, results, h, 'flower'), r.status ? `GET /healthcheck: HTTP ${r.status}` : 'GET /healthcheck: no answer') }));
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// DAG storage, FTP, SSH target.

export const dagsCheck: StatusCheck = {
  component: 'dags',
  probes(ctx, host) {
    if (!DAG_READER_ROLES.some((r) => has(host, r))) return [];
    const bundles = dagBundleConfig(ctx.inventory);
    if (bundles) {
      // Mode git, on each DAG processor host: whether its processor is the active one (under the etcd
      // lock the unit's main process is etcdctl, and the processor its child once it holds the lock),
      // the commit of its checkout (dagBundleCheckout), and the bare clone's FETCH_HEAD: git rewrites
      // it on every fetch, and a fetch that fails leaves it empty (0 bytes).
      if (!dagProcessorHosts(ctx.inventory).some((h) => h.name === host.name)) return [];
      const unit = airflowLayout(ctx.inventory.cluster.versions.airflow).units['dag-processor'];
      const checkout = dagBundleCheckout(bundles);
      return [
        probe(
          'dags.bundle',
          sh`m=$(systemctl show -p MainPID --value ${unit} 2>/dev/null); r=stopped; if [ -n "$m" ] && [ "$m" != 0 ]; then if [ "$(cat /proc/"$m"/comm 2>/dev/null)" = etcdctl ]; then if pgrep -P "$m" >/dev/null; then r=active; else r=standby; fi; else r=active; fi; fi; echo "role=$r"; echo "head=$(git -c safe.directory='*' -C ${checkout} rev-parse HEAD 2>/dev/null)"; if t=$(stat -c '%Y %s' ${`${dagBundleBare(bundles)}/FETCH_HEAD`} 2>/dev/null); then echo "fetched=$(( $(date +%s) - \${t%% *} ))"; echo "fetchbytes=\${t#* }"; fi; true`,
          5,
        ),
      ];
    }
    const d = ctx.inventory.cluster.dags.path;
    // findmnt reads /proc only; the listing may hang on a dead NFS server, hence its own timeout.
    // A synced folder is a symlink to <path>-releases/<revision> (src/tasks/release.ts).
    return [probe('dags.folder', sh`findmnt -n -o FSTYPE,SOURCE --target ${d}; timeout 3 ls -A ${`${d}/`} >/dev/null && echo readable; r=$(readlink ${d} 2>/dev/null) && echo "rev=\${r##*/}"; true`, 5)];
  },
  judge(ctx, results) {
    if (dagBundleConfig(ctx.inventory)) return judgeDagBundles(ctx.inventory, results);
    const hosts = ctx.inventory.hosts.filter((h) => DAG_READER_ROLES.some((r) => has(h, r)));
    const lines: CheckLine[] = [];
    const revs = new Map<string, string>();
    let nfs = false;
    for (const h of hosts) {
      const why = unreachable(results, h.name);
      const o = out(results, h.name, 'dags.folder');
      const f = p.parseDagFolder(o?.stdout ?? '');
      if (f.fstype?.startsWith('nfs')) nfs = true;
      if (f.revision) revs.set(h.name, f.revision);
      lines.push(
        !why && f.readable
          ? line('dags', `${ctx.inventory.cluster.dags.path} on ${h.name}`, 'healthy', { host: h.name, reason: join(`readable, ${f.fstype ?? '?'} ${f.source ?? ''}`.trim(), f.revision && `revision ${f.revision}`) })
          : !why && o?.code === NO_ANSWER
            ? line('dags', `${ctx.inventory.cluster.dags.path} on ${h.name}`, 'degraded', { host: h.name, reason: failure(o, 'listing') })
            : line('dags', `${ctx.inventory.cluster.dags.path} on ${h.name}`, 'down', { host: h.name, reason: why ?? (o?.code === TIMED_OUT ? 'listing timed out (NFS server gone?)' : 'not readable'), critical: false }),
      );
    }
    if (!nfs && revs.size) {
      const distinct = [...new Set(revs.values())];
      lines.push(
        distinct.length === 1 && revs.size === hosts.length
          ? line('dags', 'synced revision', 'healthy', { reason: `${distinct[0]} on every host` })
          : line('dags', 'synced revision', 'degraded', { reason: [...revs].map(([h, r]) => `${h} ${r}`).join(', ') + (revs.size < hosts.length ? `; no revision on ${hosts.filter((h) => !revs.has(h.name)).map((h) => h.name).join(', ')}` : '') }),
      );
    }
    return lines;
  },
};

/** One DAG processor host's answer to the `dags.bundle` probe: its role, its checkout's commit, seconds since its last fetch. */
export interface BundleProbe {
  role: 'active' | 'standby' | 'stopped';
  head?: string;
  /** Seconds since the bare clone's last fetch (FETCH_HEAD's mtime), when it has one. */
  fetchedSec?: number;
  /** FETCH_HEAD's size in bytes: 0 after a fetch that failed. */
  fetchBytes?: number;
}

/** Parses the `dags.bundle` probe's output (`role=`, `head=`, `fetched=` lines); undefined when it has no role line. */
export function parseBundleProbe(stdout: string): BundleProbe | undefined {
  const role = /^role=(active|standby|stopped)$/m.exec(stdout)?.[1] as BundleProbe['role'] | undefined;
  if (!role) return undefined;
  const head = /^head=([0-9a-f]{40})$/m.exec(stdout)?.[1];
  const fetched = /^fetched=(-?\d+)$/m.exec(stdout)?.[1];
  const bytes = /^fetchbytes=(\d+)$/m.exec(stdout)?.[1];
  return { role, ...(head ? { head } : {}), ...(fetched !== undefined ? { fetchedSec: Math.max(0, Number(fetched)) } : {}), ...(bytes !== undefined ? { fetchBytes: Number(bytes) } : {}) };
}

/**
 * Mode git. DAG processors are active/standby under the etcd lock (README "Airflow 3"), so only the
 * active one keeps its checkout current. One line per DAG processor host:
 * - active: healthy at its commit while its last fetch succeeded and is at most
 *   `2 * refreshIntervalSec + 30` s old; degraded when that fetch failed (an empty FETCH_HEAD: a
 *   wrong key, host key, URL, or the server down), when it is older (the processor stopped
 *   fetching), or when it has no checkout yet;
 * - standby: healthy (it fetches when it takes the lock; its last commit is shown when it has one);
 * - stopped or unreachable: degraded.
 * Then `bundle version`: healthy with the active processor's commit, degraded when no active one
 * has a checkout or two active ones differ (for a moment after a lock handover).
 */
export function judgeDagBundles(inv: Inventory, results: Results): CheckLine[] {
  const hosts = dagProcessorHosts(inv);
  const refresh = inv.cluster.dags.git?.refreshIntervalSec ?? 300;
  const stale = 2 * refresh + 30;
  const lines: CheckLine[] = [];
  const active = new Map<string, string>();
  for (const h of hosts) {
    const why = unreachable(results, h.name);
    const o = out(results, h.name, 'dags.bundle');
    const b = o?.code === 0 ? parseBundleProbe(o.stdout) : undefined;
    const check = `bundle on ${h.name}`;
    if (!b) {
      lines.push(line('dags', check, 'degraded', { host: h.name, reason: why ?? failure(o, 'the bundle probe') }));
      continue;
    }
    const at = b.head ? `at ${b.head.slice(0, 12)}` : '';
    if (b.role === 'standby') {
      lines.push(line('dags', check, 'healthy', { host: h.name, reason: `standby${at ? `, last ${at}` : ''} (fetches when it takes the etcd lock)` }));
    } else if (b.role === 'stopped') {
      lines.push(line('dags', check, 'degraded', { host: h.name, reason: `the DAG processor is not running${at ? ` (checkout ${at})` : ''}` }));
    } else if (!b.head) {
      lines.push(line('dags', check, 'degraded', { host: h.name, reason: 'active, no checkout of bundle dags yet (its fetch fails? journalctl -u airflow-dag-processor)' }));
    } else {
      active.set(h.name, b.head);
      const old = b.fetchedSec !== undefined && b.fetchedSec > stale;
      lines.push(
        b.fetchBytes === 0
          ? line('dags', check, 'degraded', { host: h.name, reason: `active, ${at}, but its last fetch failed${b.fetchedSec !== undefined ? ` (${b.fetchedSec} s ago)` : ''}: journalctl -u airflow-dag-processor` })
          : old
            ? line('dags', check, 'degraded', { host: h.name, reason: `active, ${at}, but its last fetch was ${b.fetchedSec} s ago (every ${refresh} s): journalctl -u airflow-dag-processor` })
            : line('dags', check, 'healthy', { host: h.name, reason: `active, ${at}${b.fetchedSec !== undefined ? ` (fetched ${b.fetchedSec} s ago)` : ''}` }),
      );
    }
  }
  if (hosts.length > 0) {
    const distinct = [...new Set(active.values())];
    lines.push(
      distinct.length === 1
        ? line('dags', 'bundle version', 'healthy', { reason: `${distinct[0]} (active: ${[...active.keys()].join(', ')})` })
        : distinct.length === 0
          ? line('dags', 'bundle version', 'degraded', { reason: 'no active DAG processor has a checkout of bundle dags' })
          : line('dags', 'bundle version', 'degraded', { reason: `active DAG processors differ: ${[...active].map(([h, c]) => `${h} ${c.slice(0, 12)}`).join(', ')}` }),
    );
  }
  return lines;
}

export const ftpCheck: StatusCheck = {
  component: 'ftp',
  probes(_ctx, host) {
    if (!has(host, 'ftp')) return [];
    return [probe('ftp.banner', sh`timeout 2 bash -c ${`exec 3<>/dev/tcp/${host.address}/21 && head -n 1 <&3`}`)];
  },
  judge(ctx, results) {
    return hostsOf(ctx.inventory, 'ftp').map((h) => {
      const o = out(results, h.name, 'ftp.banner');
      const banner = p.firstLine(o?.stdout ?? '');
      if (o?.code === NO_ANSWER) return line('ftp', `ftp ${h.name}`, 'degraded', { host: h.name, reason: failure(o, 'greeting') });
      return banner.startsWith('220')
        ? line('ftp', `ftp ${h.name}`, 'healthy', { host: h.name, reason: banner.slice(0, 80) })
        : line('ftp', `ftp ${h.name}`, 'down', { host: h.name, reason: unreachable(results, h.name) ?? join(unitNotes(ctx, results, h, 'ftp'), banner ? `greeting: ${banner.slice(0, 80)}` : 'no FTP greeting on port 21') });
    });
  },
};

export const targetCheck: StatusCheck = {
  component: 'target',
  probes(ctx, host) {
    if (!has(host, 'worker')) return [];
    return hostsOf(ctx.inventory, 'target').map((t) =>
      slow(
        probe(
          `target.ssh:${t.name}`,
          sh`runuser -u ${ctx.inventory.cluster.airflow.user} -- ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=3 -o NumberOfPasswordPrompts=0 ${t.address} true 2>&1`,
          6,
        ),
      ),
    );
  },
  judge(ctx, results) {
    const lines: CheckLine[] = [];
    for (const w of hostsOf(ctx.inventory, 'worker')) {
      for (const t of hostsOf(ctx.inventory, 'target')) {
        const o = out(results, w.name, `target.ssh:${t.name}`);
        const why = unreachable(results, w.name);
        const r = o ? p.parseSshProbe(o.stdout, o.code) : undefined;
        const check = `${t.name} from ${w.name}`;
        if (!why && o?.code === NO_ANSWER) lines.push(line('target', check, 'degraded', { host: w.name, reason: failure(o, 'ssh') }));
        else if (why || !r) lines.push(line('target', check, 'down', { host: w.name, reason: why ?? 'no output' }));
        else {
          // In --watch the login is tried at most every SLOW_REFRESH_SEC: the line says how old it is.
          const age = o?.ageSec !== undefined ? ` (checked ${Math.round(o.ageSec)} s ago)` : '';
          if (r.outcome === 'ok') lines.push(line('target', check, 'healthy', { host: w.name, reason: `reached with its pinned host key${age}` }));
          else if (r.outcome === 'auth-refused') lines.push(line('target', check, 'degraded', { host: w.name, reason: `host key matches, login refused: ${r.message}${age}` }));
          else lines.push(line('target', check, 'down', { host: w.name, reason: `${r.message}${age}` }));
        }
      }
    }
    return lines;
  },
};

/** Certificates of `cluster.tls`: days left on each host's certificate and the CA (src/status/tls.ts). */
export const tlsCheck: StatusCheck = {
  component: 'tls',
  probes: (ctx) => tlsProbes(ctx.inventory).map(slow),
  judge: (ctx, results) => tlsLines(ctx.inventory, results),
};

/** WAL segments a primary may have completed and not archived yet before `status` says archiving lags. */
export const ARCHIVE_WAITING_MAX = 2;

/**
 * Backups (role backup): the newest good backup's age against `cluster.backup.maxAgeHours`, from
 * `pgbackrest info` on the backup host, and the primary's WAL archiving from `pg_stat_archiver`
 * (segments completed but not archived yet; a failure newer than the last success). Both only
 * degrade: a missing backup never stops the cluster serving.
 */
export const backupCheck: StatusCheck = {
  component: 'backup',
  probes(ctx, host) {
    const inv = ctx.inventory;
    if (!inv.hosts.some((h) => has(h, 'backup'))) return [];
    const probes: Probe[] = [];
    if (has(host, 'backup')) probes.push(slow(probe('backup.info', sh`date +%s; ${infoCommand(inv)}`, 15)));
    if (has(host, 'postgresql')) probes.push(probe('backup.archiver', sh`${psql(inv)} -c ${ARCHIVER_SQL}`));
    return probes;
  },
  judge(ctx, results) {
    const inv = ctx.inventory;
    const repo = hostsOf(inv, 'backup')[0];
    if (!repo) return [];
    const lines: CheckLine[] = [];
    const o = out(results, repo.name, 'backup.info');
    const maxSec = inv.cluster.backup.maxAgeHours * 3600;
    const why = unreachable(results, repo.name);
    if (why || !o || o.code !== 0) {
      lines.push(line('backup', 'last backup', 'degraded', { host: repo.name, critical: false, reason: why ?? failure(o, 'pgbackrest info') }));
    } else {
      const [first, ...rest] = o.stdout.split('\n');
      const nowSec = Number(first);
      try {
        const info = parseInfo(rest.join('\n'), backupStanza(inv));
        const good = lastGoodBackup(info);
        if (!good) lines.push(line('backup', 'last backup', 'degraded', { host: repo.name, critical: false, reason: `no good backup in stanza ${info.name} (${info.statusMessage})` }));
        else {
          const age = nowSec - good.stopSec;
          const verdict = age > maxSec ? 'degraded' : 'healthy';
          lines.push(line('backup', 'last backup', verdict, { host: repo.name, critical: false, reason: `${good.type} ${good.label}, ${formatAge(age)} old${verdict === 'degraded' ? ` (older than ${inv.cluster.backup.maxAgeHours} h: is the schedule running?)` : ''}` }));
        }
      } catch (e) {
        lines.push(line('backup', 'last backup', 'degraded', { host: repo.name, critical: false, reason: (e as Error).message }));
      }
    }
    const states = hostsOf(inv, 'postgresql').flatMap((h) => {
      const a = out(results, h.name, 'backup.archiver');
      const s = a && a.code === 0 ? parseArchiver(a.stdout) : undefined;
      return s?.primary ? [{ host: h, s }] : [];
    });
    const primary = states[0];
    if (!primary) {
      lines.push(line('backup', 'WAL archive', 'degraded', { critical: false, reason: 'no primary answered pg_stat_archiver' }));
      return lines;
    }
    const { host, s } = primary;
    const waiting = segmentsWaiting(s);
    const last = s.lastArchivedWal ? `last archived ${s.lastArchivedWal} ${formatAge(s.nowSec - s.lastArchivedSec)} ago` : 'nothing archived yet';
    if (s.lastFailedSec > s.lastArchivedSec) {
      lines.push(line('backup', 'WAL archive', 'degraded', { host: host.name, critical: false, reason: `archive_command failing: ${s.lastFailedWal ?? '?'} failed ${formatAge(s.nowSec - s.lastFailedSec)} ago (${s.failedCount} failures); ${last}` }));
    } else if (waiting !== undefined && waiting > ARCHIVE_WAITING_MAX) {
      lines.push(line('backup', 'WAL archive', 'degraded', { host: host.name, critical: false, reason: `${waiting} segments wait to be archived; ${last}` }));
    } else {
      lines.push(line('backup', 'WAL archive', 'healthy', { host: host.name, critical: false, reason: `lag ${waiting ?? '?'} segment(s); ${last}` }));
    }
    return lines;
  },
};

// ---------------------------------------------------------------------------------------------
// Monitoring: each Prometheus answers and scrapes every target; each Alertmanager is ready; the alerts firing.

/** How many down targets a Prometheus line names before `and N more`. */
const TARGETS_NAMED = 4;

/**
 * Each monitoring host asks its own Prometheus (`GET /api/v1/targets?state=active`, `GET
 * /api/v1/alerts`: https://prometheus.io/docs/prometheus/2.42/querying/api/) and Alertmanager
 * (`GET /-/ready`). Lines: `prometheus HOST` (every target up, else the down ones with their
 * scrape error), `alertmanager HOST`, and `alerts` (none firing, else which) from the first
 * Prometheus that answered. With two monitoring hosts one of them down only degrades the component.
 * Monitoring is never on a serving path.
 */
export const monitoringCheck: StatusCheck = {
  component: 'monitoring',
  probes(ctx, host) {
    if (!has(host, 'monitoring')) return [];
    const { prometheus, alertmanager } = ctx.inventory.cluster.ports;
    const base = `http://${host.address}:${prometheus}`;
    return [
      probe('monitoring.targets', httpGet(`${base}/api/v1/targets?state=active`)),
      probe('monitoring.alerts', httpGet(`${base}/api/v1/alerts`)),
      probe('monitoring.alertmanager', httpGet(`http://${host.address}:${alertmanager}/-/ready`)),
    ];
  },
  judge(ctx, results) {
    const hosts = hostsOf(ctx.inventory, 'monitoring');
    if (!hosts.length) return [];
    const critical = hosts.length > 1 ? { critical: false } : {};
    const lines: CheckLine[] = [];
    let alerts: p.PromAlert[] | undefined;
    let alertsFrom = '';
    for (const h of hosts) {
      const why = unreachable(results, h.name);
      const o = out(results, h.name, 'monitoring.targets');
      const targets = o?.code === 0 ? p.parsePromTargets(parseHttp(o.stdout).body) : undefined;
      if (why || !targets) {
        const reason = why ?? join(unitNotes(ctx, results, h, 'monitoring'), failure(o, 'GET /api/v1/targets'));
        lines.push(line('monitoring', `prometheus ${h.name}`, o?.code === NO_ANSWER ? 'degraded' : 'down', { host: h.name, reason, ...critical }));
      } else {
        const down = targets.filter((t) => t.health !== 'up');
        // The end of a scrape error says why (`connect: connection refused`): keep that part.
        const named = down.slice(0, TARGETS_NAMED).map((t) => `${t.job} ${t.host}${t.lastError ? ` (${t.lastError.length > 100 ? `...${t.lastError.slice(-100)}` : t.lastError})` : ` (${t.health})`}`);
        const more = down.length > TARGETS_NAMED ? ` and ${down.length - TARGETS_NAMED} more` : '';
        lines.push(
          down.length
            ? line('monitoring', `prometheus ${h.name}`, 'degraded', { host: h.name, reason: `${down.length} of ${targets.length} targets not up: ${named.join(', ')}${more}` })
            : line('monitoring', `prometheus ${h.name}`, 'healthy', { host: h.name, reason: `${targets.length}/${targets.length} targets up` }),
        );
        const a = out(results, h.name, 'monitoring.alerts');
        const parsed = a?.code === 0 ? p.parsePromAlerts(parseHttp(a.stdout).body) : undefined;
        if (parsed && alerts === undefined) {
          alerts = parsed;
          alertsFrom = h.name;
        }
      }
      const am = out(results, h.name, 'monitoring.alertmanager');
      const ready = am?.code === 0 && parseHttp(am.stdout).status === 200;
      lines.push(
        ready
          ? line('monitoring', `alertmanager ${h.name}`, 'healthy', { host: h.name, reason: 'ready' })
          : line('monitoring', `alertmanager ${h.name}`, am?.code === NO_ANSWER ? 'degraded' : 'down', { host: h.name, reason: why ?? join(unitNotes(ctx, results, h, 'monitoring'), failure(am, 'GET /-/ready')), ...critical }),
      );
    }
    if (alerts) {
      const firing = alerts.filter((a) => a.state === 'firing');
      const pending = alerts.filter((a) => a.state === 'pending');
      const text = (list: p.PromAlert[]) => [...new Set(list.map((a) => a.name + (a.labels['host'] ? ` ${a.labels['host']}` : a.labels['vip'] ? ` ${a.labels['vip']}` : '')))].join(', ');
      lines.push(
        firing.length
          ? line('monitoring', 'alerts', 'degraded', { host: alertsFrom, reason: join(`firing: ${text(firing)}`, pending.length > 0 && `pending: ${text(pending)}`) })
          : line('monitoring', 'alerts', 'healthy', { host: alertsFrom, reason: join('none firing', pending.length > 0 && `pending: ${text(pending)}`) }),
      );
    }
    return lines;
  },
};

/** Every check, in report order. */
export const STATUS_CHECKS: readonly StatusCheck[] = [hostsCheck, etcdCheck, patroniCheck, haproxyCheck, keepalivedCheck, rabbitmqCheck, airflowCheck, dagsCheck, ftpCheck, targetCheck, tlsCheck, backupCheck, monitoringCheck];

/** The probes of one host: every check's, for its roles. */
export function hostProbes(ctx: StatusContext, host: Host, checks: readonly StatusCheck[] = STATUS_CHECKS): Probe[] {
  return checks.flatMap((c) => c.probes(ctx, host));
}

/** Every line of the report from all hosts' results. */
export function judgeAll(ctx: StatusContext, results: Results, checks: readonly StatusCheck[] = STATUS_CHECKS): CheckLine[] {
  return checks.flatMap((c) => c.judge(ctx, results));
}
