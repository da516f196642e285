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
export const COMPONENTS = ['hosts', 'etcd', 'patroni', 'haproxy', 'keepalived', 'rabbitmq', 'airflow', 'dags', 'ftp', 'target', 'tls', 'backup', 'monitoring'] as const;
export type Component = (typeof COMPONENTS)[number];

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
  /**
   * A serving path: the write path through the VIP, the UI through the VIP, a broker node accepting
   * connections. The cluster is `NOT serving` (verdict `down`, exit 3) only when one of these lines
   * is `down`, i.e. was observed down, never for a probe that did not answer.
   */
  servingPath?: boolean;
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
  /** One line, e.g. `DEGRADED: patroni: member pg1: not in the cluster; ...` (alike problems grouped, see {@link summarizeProblems}). */
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

/** How many checks a group names before `and N more`. */
const GROUP_NAMES = 4;

/** A check as the summary names it: `check`, with ` (host)` when the check does not name its host. */
function label(l: CheckLine): string {
  return `${l.check}${l.host && !l.check.includes(l.host) ? ` (${l.host})` : ''}`;
}

/**
 * The problems as one line: `component: check: reason` joined by `; `. Checks of one component with
 * the same verdict and alike reasons (equal once numbers are masked: the same load on every container
 * of one machine, the same unreadable database behind every heartbeat) are one group,
 * `component: c1, c2, c3 and N more: reason` (the first check's reason, marked when the others
 * differ in their numbers), so a problem shared by 13 hosts takes one clause, not 13.
 */
export function summarizeProblems(bad: readonly CheckLine[]): string {
  const groups = new Map<string, CheckLine[]>();
  for (const l of bad) {
    const key = `${l.component}\0${l.verdict}\0${(l.reason ?? '').replace(/\d+(?:\.\d+)?/g, '#')}`;
    const g = groups.get(key);
    if (g) g.push(l);
    else groups.set(key, [l]);
  }
  return [...groups.values()]
    .map((g) => {
      const first = g[0] as CheckLine;
      const names = g.map(label);
      const list = names.length > GROUP_NAMES + 1 ? `${names.slice(0, GROUP_NAMES).join(', ')} and ${names.length - GROUP_NAMES} more` : names.join(', ');
      const alike = g.some((l) => l.reason !== first.reason) ? ` (${first.host ?? first.check}; alike on the others)` : '';
      return `${first.component}: ${list}${first.reason ? `: ${first.reason}${alike}` : ''}`;
    })
    .join('; ');
}

/**
 * Builds the report from the lines: components in {@link COMPONENTS} order (only those with lines),
 * the overall verdict and a one-line summary naming what is not healthy. The cluster is NOT serving
 * (verdict `down`, exit 3) only when a serving path ({@link CheckLine.servingPath}) was observed
 * down; the summary then names those paths first. Any other problem, a component's own `down`
 * included (etcd without quorum while the primary still takes writes), makes it `degraded`.
 */
export function buildReport(cluster: string, checkedAt: Date, durationMs: number, lines: readonly CheckLine[], hosts: readonly HostReach[]): StatusReport {
  const components = COMPONENTS.flatMap((name) => {
    const checks = lines.filter((l) => l.component === name);
    return checks.length ? [{ name, verdict: componentVerdict(checks), checks }] : [];
  });
  const pathsDown = lines.filter((l) => l.servingPath && l.verdict === 'down');
  const verdict: Verdict = pathsDown.length ? 'down' : lines.some((l) => l.verdict !== 'healthy') ? 'degraded' : 'healthy';
  const others = lines.filter((l) => l.verdict !== 'healthy' && !pathsDown.includes(l));
  const problems = [pathsDown.length ? summarizeProblems(pathsDown) : '', others.length ? summarizeProblems(others) : ''].filter(Boolean).join('; ');
  const summary = verdict === 'healthy' ? `HEALTHY: ${lines.length} checks on ${hosts.length} hosts` : `${verdict.toUpperCase()}: ${problems}`;
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
