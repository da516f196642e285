/**
 * The screen of `airflow-ha status`: the overall verdict on the first line, then the components in
 * order. A component whose every check is healthy takes one line (its count and its headline check);
 * a component with a problem shows every one of its checks, so the problem is seen next to what still
 * works. `all` shows every check of every component. Pure: colour comes in as functions (chalk on a
 * TTY, identity otherwise).
 */
import type { CheckLine, StatusReport, Verdict } from './model.js';

/** How to colour a verdict word and dim text; identity functions for plain output. */
export interface Paint {
  verdict(v: Verdict, text: string): string;
  dim(text: string): string;
}

export const PLAIN: Paint = { verdict: (_v, t) => t, dim: (t) => t };

/** Options of {@link renderReport}. */
export interface RenderOptions {
  /** Every check of every component, healthy ones included (`status --all`). Default false. */
  all?: boolean;
}

/**
 * The line that stands for a healthy component: the first check that does not name a host (the etcd
 * or Patroni leader, the RabbitMQ cluster, the VIP, the synced DAG revision, ...), else its only check.
 */
function headline(checks: readonly CheckLine[]): CheckLine | undefined {
  return checks.find((l) => !l.host || !l.check.includes(l.host)) ?? (checks.length === 1 ? checks[0] : undefined);
}

/** The report as text lines (no trailing newline on the last one). */
export function renderReport(r: StatusReport, paint: Paint = PLAIN, opts: RenderOptions = {}): string {
  const lines = [`${paint.verdict(r.verdict, r.verdict.toUpperCase())} ${r.cluster}: ${r.serving ? 'serving' : 'NOT serving'}${r.verdict === 'healthy' ? '' : ` — ${r.summary.replace(/^\w+: /, '')}`}`];
  const width = Math.max(10, ...r.components.flatMap((c) => c.checks.map((l) => l.check.length)));
  const nameWidth = Math.max(...r.components.map((c) => c.name.length));
  for (const c of r.components) {
    const head = `${paint.verdict(c.verdict, c.name.toUpperCase().padEnd(nameWidth))}  ${paint.verdict(c.verdict, c.verdict)}`;
    if (c.verdict === 'healthy' && !opts.all) {
      const h = headline(c.checks);
      const what = `${c.checks.length} check${c.checks.length === 1 ? '' : 's'}${h ? ` — ${h.check}: ${h.reason ?? 'ok'}` : ''}`;
      lines.push(`${head}  ${paint.dim(what)}`);
      continue;
    }
    const bad = c.checks.filter((l) => l.verdict !== 'healthy').length;
    lines.push(`${head}${bad ? `  ${bad} of ${c.checks.length} checks not healthy` : ''}`);
    for (const l of c.checks) {
      const word = l.verdict.padEnd(8);
      const text = `  ${paint.verdict(l.verdict, word)} ${l.check.padEnd(width)}  `;
      lines.push(`${text}${l.verdict === 'healthy' ? paint.dim(l.reason ?? '') : (l.reason ?? '')}`.trimEnd());
    }
  }
  const reached = r.hosts.filter((h) => h.reachable).length;
  lines.push(paint.dim(`${reached}/${r.hosts.length} hosts reached, ${(r.durationMs / 1000).toFixed(2)} s, ${r.checkedAt}${opts.all ? '' : ' (--all: every check)'}`));
  return lines.join('\n');
}
