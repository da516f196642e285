/**
 * The screen of `airflow-ha status`: the overall verdict on the first line, then one line per check
 * grouped by component. Pure: colour comes in as functions (chalk on a TTY, identity otherwise).
 */
import type { StatusReport, Verdict } from './model.js';

/** How to colour a verdict word and dim text; identity functions for plain output. */
export interface Paint {
  verdict(v: Verdict, text: string): string;
  dim(text: string): string;
}

export const PLAIN: Paint = { verdict: (_v, t) => t, dim: (t) => t };

/** The report as text lines (no trailing newline on the last one). */
export function renderReport(r: StatusReport, paint: Paint = PLAIN): string {
  const lines = [`${paint.verdict(r.verdict, r.verdict.toUpperCase())} ${r.cluster}: ${r.serving ? 'serving' : 'NOT serving'}${r.verdict === 'healthy' ? '' : ` — ${r.summary.replace(/^\w+: /, '')}`}`];
  const width = Math.max(10, ...r.components.flatMap((c) => c.checks.map((l) => l.check.length)));
  for (const c of r.components) {
    lines.push(`${paint.verdict(c.verdict, c.name.toUpperCase())}`);
    for (const l of c.checks) {
      const word = l.verdict.padEnd(8);
      const text = `  ${paint.verdict(l.verdict, word)} ${l.check.padEnd(width)}  `;
      lines.push(`${text}${l.verdict === 'healthy' ? paint.dim(l.reason ?? '') : (l.reason ?? '')}`.trimEnd());
    }
  }
  const reached = r.hosts.filter((h) => h.reachable).length;
  lines.push(paint.dim(`${reached}/${r.hosts.length} hosts reached, ${(r.durationMs / 1000).toFixed(2)} s, ${r.checkedAt}`));
  return lines.join('\n');
}
