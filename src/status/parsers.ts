/**
 * Parsers of what the status probes print. Pure functions of text; each names the tool and output
 * format it reads. None throws: unreadable input gives an empty/undefined result, which the checks
 * report as "unreadable output".
 */

/** `systemctl is-active U1 U2 ...` (systemctl(1)): one state per line, in argument order. */
export function parseIsActive(stdout: string, units: readonly string[]): Record<string, string> {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  return Object.fromEntries(units.map((u, i) => [u, lines[i] ?? 'unknown']));
}

/** `systemctl list-units --state=failed --no-legend --plain` (systemctl(1)): the failed unit names. */
export function parseFailedUnits(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim().replace(/^[●*]\s*/, ''))
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0] as string);
}

/** One data folder's file system: `df -Pk` (POSIX output format, 1024-byte blocks). */
export interface DiskUse {
  path: string;
  mount: string;
  usedPct: number;
  availKiB: number;
}

/** Lines `PATH FILESYSTEM 1024-BLOCKS USED AVAILABLE CAPACITY% MOUNTED-ON` (the path, then df -Pk's data line). */
export function parseDf(stdout: string): DiskUse[] {
  const out: DiskUse[] = [];
  for (const line of stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7 || !/^\d+%$/.test(f[5] ?? '')) continue;
    out.push({ path: f[0] as string, mount: f.slice(6).join(' '), usedPct: Number((f[5] as string).slice(0, -1)), availKiB: Number(f[4]) });
  }
  return out;
}

/** MemTotal and MemAvailable (kB) of /proc/meminfo (proc(5)); undefined when missing. */
export function parseMeminfo(stdout: string): { totalKiB: number; availableKiB: number } | undefined {
  const get = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(stdout);
    return m ? Number(m[1]) : undefined;
  };
  const total = get('MemTotal');
  const avail = get('MemAvailable');
  return total && avail !== undefined ? { totalKiB: total, availableKiB: avail } : undefined;
}

/**
 * `cat /proc/loadavg; nproc; cat /run/systemd/container`: the 1- and 5-minute load averages, the CPU
 * count (proc(5), nproc(1)) and, in a container, its manager's name (systemd sets
 * /run/systemd/container: systemd-detect-virt(1)); `container` is then true.
 */
export function parseLoad(stdout: string): { load1: number; load5: number; cpus: number; container: boolean } | undefined {
  const [first, second, third] = stdout.trim().split('\n');
  const f = (first ?? '').split(/\s+/);
  const cpus = Number(second);
  const load1 = Number(f[0]);
  const load5 = Number(f[1]);
  if (!Number.isFinite(load1) || !Number.isFinite(load5) || !(cpus > 0)) return undefined;
  return { load1, load5, cpus, container: Boolean(third?.trim()) };
}

/** JSON.parse that keeps etcd's uint64 ids exact: bare integers of 16+ digits become strings. */
function parseBigIdJson(text: string): unknown {
  const start = text.search(/[[{]/);
  if (start < 0) return undefined;
  try {
    return JSON.parse(text.slice(start).replace(/([:[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
  } catch {
    return undefined;
  }
}

/**
 * One member's own view, from `POST /v3/maintenance/status` of etcd's v3 JSON gateway (etcd 3.4/3.5:
 * `{header: {member_id, raft_term}, leader, raftTerm, version}`; uint64 ids as decimal strings).
 */
export interface EtcdEndpointStatus {
  memberId: string;
  leader: string;
  raftTerm: number;
  version: string;
}

export function parseEtcdStatus(body: string): EtcdEndpointStatus | undefined {
  const s = parseBigIdJson(body) as { header?: { member_id?: unknown; raft_term?: unknown }; leader?: unknown; raftTerm?: unknown; version?: unknown } | undefined;
  if (!s?.header || s.header.member_id === undefined) return undefined;
  return {
    memberId: String(s.header.member_id),
    leader: String(s.leader ?? '0'),
    raftTerm: Number(s.raftTerm ?? s.header.raft_term),
    version: String(s.version ?? ''),
  };
}

/** `POST /v3/cluster/member/list` of etcd's v3 JSON gateway: member id -> name (`{members: [{ID, name, ...}]}`). */
export function parseEtcdMembers(body: string): Map<string, string> {
  const doc = parseBigIdJson(body) as { members?: Array<{ ID?: unknown; name?: unknown }> } | undefined;
  return new Map((doc?.members ?? []).map((m) => [String(m.ID), String(m.name ?? '')]));
}

/**
 * etcd's `GET /health` (https://etcd.io/docs/v3.4/op-guide/monitoring/#health-check): HTTP 200 with
 * `{"health":"true"}` when the member can commit through a leader; else 503 and `"false"` with a
 * `reason` (etcd 3.5). `status` 0 means nothing answered.
 */
export function parseEtcdHealth(status: number, body: string): { healthy: boolean; error?: string } {
  let doc: { health?: unknown; reason?: unknown } | undefined;
  try {
    doc = JSON.parse(body) as typeof doc;
  } catch {
    doc = undefined;
  }
  if (status === 200 && doc?.health === 'true') return { healthy: true };
  const error = status === 0 ? 'no answer on the client port' : `HTTP ${status}${doc?.reason ? `: ${String(doc.reason).slice(0, 160)}` : doc?.health !== undefined ? `, health ${String(doc.health)}` : ''}`;
  return { healthy: false, error };
}

/** One member of Patroni's `GET /cluster` (REST API, Patroni >= 2.0): role, state, timeline, lag in bytes. */
export interface PatroniMember {
  name: string;
  role: string;
  state: string;
  timeline?: number;
  /** Replication lag in bytes; `unknown` when Patroni cannot tell; absent for the leader. */
  lag?: number | 'unknown';
  host?: string;
}

/** Patroni `GET /cluster` JSON: `{members: [{name, role, state, timeline, lag, host}], scope}`. */
export function parsePatroniCluster(body: string): PatroniMember[] | undefined {
  let doc: { members?: Array<Record<string, unknown>> };
  try {
    doc = JSON.parse(body) as typeof doc;
  } catch {
    return undefined;
  }
  if (!Array.isArray(doc.members)) return undefined;
  return doc.members.map((m) => ({
    name: String(m['name']),
    role: String(m['role']),
    state: String(m['state']),
    ...(typeof m['timeline'] === 'number' ? { timeline: m['timeline'] } : {}),
    ...(typeof m['lag'] === 'number' ? { lag: m['lag'] } : m['lag'] !== undefined && m['role'] !== 'leader' ? { lag: 'unknown' as const } : {}),
    ...(typeof m['host'] === 'string' ? { host: m['host'] } : {}),
  }));
}

/** Whether a Patroni role is the leader's (`leader`; `master` before Patroni 4 in some views; `standby_leader`). */
export function isPatroniLeader(role: string): boolean {
  return role === 'leader' || role === 'master' || role === 'primary' || role === 'standby_leader';
}

/** A server row of HAProxy's `show stat` CSV (management guide "9.1 CSV format"). */
export interface HaproxyServer {
  proxy: string;
  server: string;
  /** `UP`, `DOWN`, `MAINT`, `NOLB`, `UP 1/2` (going down), `DOWN 1/2` (going up), `no check`. */
  status: string;
  /** Last health check's status, e.g. `L7OK`, `L7STS`, `L4CON`. */
  check: string;
}

/** The server rows (not FRONTEND/BACKEND) of `show stat` CSV, columns found by the `# pxname,...` header. */
export function parseHaproxyStat(csv: string): HaproxyServer[] {
  const lines = csv.split('\n');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return [];
  const cols = header.slice(2).split(',');
  const at = (name: string) => cols.indexOf(name);
  const [px, sv, st, ck] = [at('pxname'), at('svname'), at('status'), at('check_status')];
  return lines
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(','))
    .filter((f) => f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND' && f.length > st)
    .map((f) => ({ proxy: f[px] ?? '', server: f[sv] ?? '', status: f[st] ?? '', check: ck >= 0 ? (f[ck] ?? '') : '' }));
}

/** The IPv4 addresses of `ip -br -4 addr` (ip-address(8) brief output: `IFACE STATE ADDR/PREFIX ...`). */
export function parseIpBrief(stdout: string): string[] {
  return [...stdout.matchAll(/\s(\d{1,3}(?:\.\d{1,3}){3})\/\d+/g)].map((m) => m[1] as string);
}

/** One node of RabbitMQ's management API `GET /api/nodes` (HTTP API reference). */
export interface RabbitNode {
  name: string;
  running: boolean;
  partitions: string[];
  memAlarm: boolean;
  diskAlarm: boolean;
}

export function parseRabbitNodes(body: string): RabbitNode[] | undefined {
  try {
    const doc = JSON.parse(body) as Array<Record<string, unknown>>;
    if (!Array.isArray(doc)) return undefined;
    return doc.map((n) => ({
      name: String(n['name']),
      running: n['running'] === true,
      partitions: Array.isArray(n['partitions']) ? (n['partitions'] as unknown[]).map(String) : [],
      memAlarm: n['mem_alarm'] === true,
      diskAlarm: n['disk_free_alarm'] === true,
    }));
  } catch {
    return undefined;
  }
}

/** One queue of `GET /api/queues/<vhost>`: depth (ready + unacknowledged), consumers, type, state. */
export interface RabbitQueue {
  name: string;
  messages: number;
  consumers: number;
  type: string;
  state: string;
  node: string;
}

export function parseRabbitQueues(body: string): RabbitQueue[] | undefined {
  try {
    const doc = JSON.parse(body) as Array<Record<string, unknown>>;
    if (!Array.isArray(doc)) return undefined;
    return doc.map((q) => ({
      name: String(q['name']),
      messages: Number(q['messages'] ?? 0),
      consumers: Number(q['consumers'] ?? 0),
      type: String(q['type'] ?? 'classic'),
      state: String(q['state'] ?? 'running'),
      node: String(q['node'] ?? q['leader'] ?? ''),
    }));
  } catch {
    return undefined;
  }
}

/** One consumer of `GET /api/consumers/<vhost>`: its queue and the address of the client that consumes it. */
export interface RabbitConsumer {
  queue: string;
  /** `channel_details.peer_host`: the consuming client's address as the broker sees it. */
  peerHost: string;
}

/** `GET /api/consumers/<vhost>` of RabbitMQ's management API (HTTP API reference, "/api/consumers/vhost"). */
export function parseRabbitConsumers(body: string): RabbitConsumer[] | undefined {
  try {
    const doc = JSON.parse(body) as Array<{ queue?: { name?: unknown }; channel_details?: { peer_host?: unknown } }>;
    if (!Array.isArray(doc)) return undefined;
    return doc.map((c) => ({ queue: String(c.queue?.name ?? ''), peerHost: String(c.channel_details?.peer_host ?? '') }));
  } catch {
    return undefined;
  }
}

/** Whether a queue is Celery's own plumbing (broadcast/pidbox/events), not a task queue. */
export function isCeleryInternalQueue(name: string): boolean {
  return /\.pidbox$/.test(name) || name.startsWith('celeryev.') || name.startsWith('celery@') || name.endsWith('.reply.celery.pidbox');
}

/** One row of the heartbeat query (src/status/checks.ts `HEARTBEAT_SQL`). */
export interface JobHeartbeat {
  /** Airflow's `job.job_type`, e.g. `SchedulerJob`. */
  jobType: string;
  /** `job.hostname`: what the job's host called itself (`[core] hostname_callable`). */
  hostname: string;
  /** Seconds since the job's latest heartbeat, by the database server's clock (negative when the host's clock is ahead). */
  ageSec: number;
}

/** The heartbeat query's answer: the node's role, then the rows. */
export interface Heartbeats {
  node: 'primary' | 'replica';
  rows: JobHeartbeat[];
}

/**
 * psql's unaligned tuples-only output (`-A -t`, fields joined by `|`) of the heartbeat query: the
 * line `primary` or `replica`, then `job_type|hostname|seconds` rows. Undefined when the first line
 * is anything else (an error such as `relation "job" does not exist`).
 */
export function parseHeartbeats(stdout: string): Heartbeats | undefined {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const node = lines.shift();
  if (node !== 'primary' && node !== 'replica') return undefined;
  const rows: JobHeartbeat[] = [];
  for (const l of lines) {
    const f = l.split('|');
    const age = Number(f[2]);
    if (f.length !== 3 || !f[0] || !f[1] || f[2] === '' || !Number.isFinite(age)) return undefined;
    rows.push({ jobType: f[0], hostname: f[1], ageSec: age });
  }
  return { node, rows };
}

/**
 * Seconds since the freshest heartbeat of a running `jobType` from `host` (its `job.hostname` is
 * the host's name, or a fully qualified name starting with it), or undefined when it has none.
 */
export function heartbeatAge(rows: readonly JobHeartbeat[], jobType: string, host: string): number | undefined {
  const ages = rows.filter((r) => r.jobType === jobType && (r.hostname === host || r.hostname.startsWith(`${host}.`))).map((r) => r.ageSec);
  return ages.length ? Math.min(...ages) : undefined;
}

/**
 * The webserver's `GET /health` body (Airflow 2.x "Checking Airflow Health Status"): each of
 * metadatabase, scheduler, triggerer, dag_processor has `status` healthy/unhealthy (or null when the
 * component is not used). The HTTP code is 200 either way: only the body tells.
 */
export function parseAirflowHealth(body: string): Record<string, string | null> | undefined {
  try {
    const doc = JSON.parse(body) as Record<string, { status?: string | null } | null>;
    if (typeof doc !== 'object' || doc === null || !('metadatabase' in doc)) return undefined;
    return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, v?.status ?? null]));
  } catch {
    return undefined;
  }
}

/** The first line a TCP server sent (e.g. an FTP greeting `220 ...`, RFC 959 section 4.2). */
export function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').replace(/\r$/, '');
}

/** `findmnt -n -o FSTYPE,SOURCE --target DIR` then `readable` when a listing succeeded, then `rev=REVISION`. */
export function parseDagFolder(stdout: string): { fstype?: string; source?: string; readable: boolean; revision?: string } {
  const lines = stdout.split('\n').map((l) => l.trim());
  const [fstype, source] = (lines[0] ?? '').split(/\s+/);
  const rev = lines.find((l) => l.startsWith('rev='))?.slice(4);
  return { ...(fstype ? { fstype } : {}), ...(source ? { source } : {}), readable: lines.includes('readable'), ...(rev ? { revision: rev } : {}) };
}

/**
 * `ssh -o BatchMode=yes -o StrictHostKeyChecking=yes TARGET true 2>&1` (ssh(1)): reached with a
 * matching pinned key (exit 0, or refused authentication), a key that does not match (`Host key
 * verification failed`, `REMOTE HOST IDENTIFICATION HAS CHANGED`), no pinned key, or not reached.
 */
export function parseSshProbe(text: string, code: number): { outcome: 'ok' | 'auth-refused' | 'key-mismatch' | 'key-unknown' | 'unreachable'; message: string } {
  const msg = text.trim().split('\n').filter(Boolean).pop() ?? '';
  if (code === 0) return { outcome: 'ok', message: msg };
  if (/IDENTIFICATION HAS CHANGED/.test(text)) return { outcome: 'key-mismatch', message: 'the host key differs from the pinned one' };
  if (/No \S+ host key is known/.test(text)) return { outcome: 'key-unknown', message: 'no pinned host key for it' };
  if (/Host key verification failed/.test(text)) return { outcome: 'key-mismatch', message: 'host key verification failed' };
  if (/Permission denied/.test(text)) return { outcome: 'auth-refused', message: msg };
  return { outcome: 'unreachable', message: msg.slice(0, 160) || `ssh exit ${code}` };
}

/** The array `data[key]` of a Prometheus API answer (`{"status":"success","data":{...}}`), or undefined when the body is not one. */
function promData(body: string, key: string): unknown[] | undefined {
  try {
    const d = JSON.parse(body) as { status?: string; data?: Record<string, unknown> };
    const list = d.status === 'success' ? d.data?.[key] : undefined;
    return Array.isArray(list) ? list : undefined;
  } catch {
    return undefined;
  }
}

/** One active target of Prometheus's `GET /api/v1/targets` (https://prometheus.io/docs/prometheus/2.42/querying/api/#targets). */
export interface PromTarget {
  job: string;
  /** The target's `host` label (airflow-ha labels every target with its inventory host), else its instance. */
  host: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

/** The active targets of a `/api/v1/targets` answer, or undefined when the body is not one (`status` not `success`). */
export function parsePromTargets(body: string): PromTarget[] | undefined {
  const list = promData(body, 'activeTargets');
  return list && (list as Array<{ labels?: Record<string, string>; health?: string; lastError?: string }>).map((t) => ({
    job: String(t.labels?.['job'] ?? '?'),
    host: String(t.labels?.['host'] ?? t.labels?.['instance'] ?? '?'),
    health: t.health === 'up' || t.health === 'down' ? t.health : 'unknown',
    lastError: String(t.lastError ?? ''),
  }));
}

/** One alert of `GET /api/v1/alerts`: its name, state (`pending` or `firing`) and labels. */
export interface PromAlert {
  name: string;
  state: string;
  labels: Record<string, string>;
}

/** The alerts of a `/api/v1/alerts` answer, or undefined when the body is not one. */
export function parsePromAlerts(body: string): PromAlert[] | undefined {
  const list = promData(body, 'alerts');
  return list && (list as Array<{ labels?: Record<string, string>; state?: string }>).map((a) => ({
    name: String(a.labels?.['alertname'] ?? '?'),
    state: String(a.state ?? '?'),
    labels: a.labels ?? {},
  }));
}
