/**
 * The data model of `airflow-ha status`: verdicts, the lines of the report, and how component and
 * overall verdicts are aggregated. Pure: no I/O.
 */

/** A check's verdict, from best to worst. */
export type Verdict = 'healthy' | 'degraded' | 'down';

const RANK: Record<Verdict, number> = { healthy: 0, degraded: 1, down: 2 };

/** The worse of the verdicts (`healthy` for none). */
export function worst(verdicts: Iterable<Verdict>): Verdict {
  let w: Verdict = 'healthy';
  for (const v of verdicts) if (RANK[v] > RANK[w]) w = v;
  return w;
}

/** The components of the report, in display order. */
export const COMPONENTS = ['hosts', 'etcd', 'patroni', 'haproxy', 'keepalived', 'rabbitmq', 'airflow', 'dags', 'ftp', 'target'] as const;
export type Component = (typeof COMPONENTS)[number];

/**
 * Components without which the cluster does not serve: a `down` line of one of these makes the
 * overall verdict `down` (exit 3). `hosts` is not one: an unreachable host degrades the cluster, and
 * what it ran is judged by its own component (e.g. etcd keeps quorum with 2 of 3 members).
 */
export const SERVING_COMPONENTS: ReadonlySet<Component> = new Set(['etcd', 'patroni', 'haproxy', 'keepalived', 'rabbitmq', 'airflow']);

/** One line of the report. */
export interface CheckLine {
  component: Component;
  /** What was checked, e.g. `member pg1`, `leader`, `listener postgres_leader`, `queue default`. */
  check: string;
  verdict: Verdict;
  /** The host the line is about (when it is about one host). */
  host?: string;
  /** Why the line is not healthy; or, when healthy, a short summary (role, lag, holder, ...). */
  reason?: string;
  /**
   * When false, a `down` on this line does not mean the component stops serving (e.g. one member of
   * three down): the component is then at worst `degraded`. Default true.
   */
  critical?: boolean;
}

/** One host's connection outcome. */
export interface HostReach {
  name: string;
  address: string;
  reachable: boolean;
  /** Why the host could not be reached (SSH error, timeout). */
  reason?: string;
  /** Milliseconds from connecting to the end of its checks. */
  ms: number;
}

/** The whole report; the JSON document of `status --json` (fields documented in README "status"). */
export interface StatusReport {
  /** Version of this document's shape. */
  schema: 1;
  cluster: string;
  /** ISO 8601 time the checks started. */
  checkedAt: string;
  /** Wall-clock milliseconds of the whole status. */
  durationMs: number;
  verdict: Verdict;
  /** Whether the cluster serves (false only when `verdict` is `down`). */
  serving: boolean;
  /** The process exit code: 0 healthy, 1 degraded, 3 down. */
  exitCode: 0 | 1 | 3;
  /** One line, e.g. `DEGRADED: patroni: member pg1 (pg1): not in the cluster; ...`. */
  summary: string;
  components: Array<{ name: Component; verdict: Verdict; checks: CheckLine[] }>;
  hosts: HostReach[];
}

/** A component's verdict: its worst line, but a non-critical `down` only degrades it. */
export function componentVerdict(lines: readonly CheckLine[]): Verdict {
  return worst(lines.map((l) => (l.verdict === 'down' && l.critical === false ? 'degraded' : l.verdict)));
}

/** Exit code of `status` for a verdict (README "Exit codes"): 0 healthy, 1 degraded, 3 down. */
export function statusExitCode(v: Verdict): 0 | 1 | 3 {
  return v === 'healthy' ? 0 : v === 'degraded' ? 1 : 3;
}

/**
 * Builds the report from the lines: components in {@link COMPONENTS} order (only those with lines),
 * the overall verdict (`down` when a serving component is down, else the worst line, a down line of
 * another component counting as degraded) and a one-line summary naming what is not healthy.
 */
export function buildReport(cluster: string, checkedAt: Date, durationMs: number, lines: readonly CheckLine[], hosts: readonly HostReach[]): StatusReport {
  const components = COMPONENTS.flatMap((name) => {
    const checks = lines.filter((l) => l.component === name);
    return checks.length ? [{ name, verdict: componentVerdict(checks), checks }] : [];
  });
  const verdict = worst(components.map((c) => (c.verdict === 'down' && !SERVING_COMPONENTS.has(c.name) ? 'degraded' : c.verdict)));
  const bad = lines.filter((l) => l.verdict !== 'healthy');
  const what = bad.map((l) => `${l.component}: ${l.check}${l.host && !l.check.includes(l.host) ? ` (${l.host})` : ''}${l.reason ? `: ${l.reason}` : ''}`);
  const summary = verdict === 'healthy' ? `HEALTHY: ${lines.length} checks on ${hosts.length} hosts` : `${verdict.toUpperCase()}: ${what.join('; ')}`;
  return {
    schema: 1,
    cluster,
    checkedAt: checkedAt.toISOString(),
    durationMs,
    verdict,
    serving: verdict !== 'down',
    exitCode: statusExitCode(verdict),
    summary,
    components,
    hosts: [...hosts],
  };
}
