/**
 * `airflow-ha status --json` for the end-to-end tests: one run through the real CLI, polling until a
 * condition holds, and finding a check in the report.
 */
import assert from 'node:assert/strict';
import type { CheckLine, StatusReport } from '../../src/status/model.js';
import { cli } from './lab.js';

/** One status: the process exit code, the parsed report and the CLI's wall time (ms). */
export interface Status {
  exitCode: number;
  report: StatusReport;
  ms: number;
}

/** `airflow-ha status -i FILE --json` through the real CLI; fails when it printed no JSON document. */
export async function statusJson(inventoryFile: string): Promise<Status> {
  const t0 = Date.now();
  const r = await cli(['status', '-i', inventoryFile, '--json']);
  const ms = Date.now() - t0;
  assert.ok(r.stdout.trim().startsWith('{'), `status --json printed a document (exit ${r.exitCode}): ${r.stdout.slice(0, 500)}${r.stderr}`);
  return { exitCode: r.exitCode, report: JSON.parse(r.stdout) as StatusReport, ms };
}

/** Polls status every 2 s until `pred` holds (returns that status) or `timeoutMs` passes (fails with the last report). */
export async function statusUntil(inventoryFile: string, what: string, pred: (s: Status) => boolean, timeoutMs: number): Promise<Status> {
  const t0 = Date.now();
  let s = await statusJson(inventoryFile);
  while (!pred(s)) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`${what}: not reached in ${timeoutMs} ms; last status:\n${JSON.stringify(s.report, null, 1).slice(0, 6000)}`);
    await new Promise((r) => setTimeout(r, 2000));
    s = await statusJson(inventoryFile);
  }
  return s;
}

/** Every line of a report. */
export const checksOf = (s: Status): CheckLine[] => s.report.components.flatMap((c) => c.checks);

/** The line `check` of `component`, if the report has it. */
export const checkOf = (s: Status, component: string, check: string): CheckLine | undefined => checksOf(s).find((l) => l.component === component && l.check === check);
