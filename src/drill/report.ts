/**
 * The figures of a drill and the table printed beside the design document's: pure functions of
 * what the load recorded (acknowledged ids with their times) and when the drill saw each phase.
 */
import { SEED_FIGURES, type FailureMethod, type ScenarioName } from './scenarios.js';

/** The load's streams: writes through the VIP, confirmed publishes, Celery tasks. */
export const STREAMS = ['db', 'broker', 'tasks'] as const;
export type StreamName = (typeof STREAMS)[number];

/** What the load script reported for one stream (templates/drill/load.py). Times: ms since the epoch, the load host's clock. */
export interface StreamRecord {
  /** `[time, id]` of every acknowledged item, in order. */
  acked: Array<[number, number]>;
  /** Attempts that were not acknowledged (errors, timeouts, refusals). */
  failures: number;
  first_failure: string | null;
  /** Acknowledged ids that were not found afterwards (row missing, message not consumed, task without a result). */
  lost: number[];
  /** Tasks only: `[time the worker finished it, id]`. */
  completed?: Array<[number, number]>;
}

/** When the drill saw each phase; ms since the epoch, the operator's clock. */
export interface PhaseTimes {
  injectedAt: number;
  /** First `status` report that showed the failure (absent: none did). */
  detectedAt?: number;
  restoredAt: number;
  /** First healthy `status` after the restore (absent: not within the wait). */
  healthyAt?: number;
  /** When the load was told to stop. */
  stoppedAt: number;
}

/** One stream's figures. */
export interface StreamFigures {
  acked: number;
  lost: number;
  failures: number;
  firstFailure?: string;
  /** Longest time without an acknowledgement (tasks: without a finished task) from the injection to the restore + 30 s, in s. */
  longestGapSec: number;
  /** Seconds from the injection to the end of that longest gap (when it ended after the injection). */
  resumedAfterSec?: number;
}

/** The figures of one scenario; the `drill` event and a row of the table. */
export interface ScenarioFigures {
  scenario: ScenarioName;
  target: string;
  method: FailureMethod;
  loadHost: string;
  /** Seconds from injection to the first status report showing it. */
  detectedSec?: number;
  heldSec: number;
  /** Seconds from the restore to `status` healthy again. */
  healthyAgainSec?: number;
  streams: Partial<Record<StreamName, StreamFigures>>;
  /** Acknowledged items lost, all streams. */
  lost: number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * The longest interval without an event in `times` (sorted ms) that overlaps [from, to]; the window's
 * edges count as events only where the stream had one before/after them.
 * @returns seconds, and the ms at which the gap ended.
 */
export function longestGap(times: readonly number[], from: number, to: number): { sec: number; endMs?: number } {
  let best = { sec: 0 } as { sec: number; endMs?: number };
  for (let i = 1; i < times.length; i++) {
    const a = times[i - 1] as number;
    const b = times[i] as number;
    if (b < from || a > to) continue;
    const sec = (b - a) / 1000;
    if (sec > best.sec) best = { sec, endMs: b };
  }
  // Nothing acknowledged after the window opened: the gap lasts until the last look.
  const last = times.length ? (times[times.length - 1] as number) : undefined;
  if (last !== undefined && last < to) {
    const sec = (to - Math.max(last, from)) / 1000;
    if (sec > best.sec) best = { sec };
  }
  return { sec: round1(best.sec), ...(best.endMs !== undefined ? { endMs: best.endMs } : {}) };
}

/**
 * The figures of a scenario. `offsetMs` is the load host's clock minus the operator's (added to the
 * operator's times to compare them with the load's).
 */
export function scenarioFigures(
  s: { scenario: ScenarioName; target: string; method: FailureMethod; loadHost: string },
  phases: PhaseTimes,
  streams: Partial<Record<StreamName, StreamRecord>>,
  offsetMs: number,
): ScenarioFigures {
  const inj = phases.injectedAt + offsetMs;
  const windowEnd = Math.min(phases.restoredAt + 30_000, phases.stoppedAt) + offsetMs;
  const out: Partial<Record<StreamName, StreamFigures>> = {};
  for (const name of STREAMS) {
    const r = streams[name];
    if (!r) continue;
    const times = (name === 'tasks' ? (r.completed ?? []) : r.acked).map(([t]) => t).sort((a, b) => a - b);
    const gap = longestGap(times, inj, windowEnd);
    out[name] = {
      acked: r.acked.length,
      lost: r.lost.length,
      failures: r.failures,
      ...(r.first_failure ? { firstFailure: r.first_failure } : {}),
      longestGapSec: gap.sec,
      ...(gap.endMs !== undefined && gap.endMs > inj ? { resumedAfterSec: round1((gap.endMs - inj) / 1000) } : {}),
    };
  }
  return {
    ...s,
    ...(phases.detectedAt !== undefined ? { detectedSec: round1((phases.detectedAt - phases.injectedAt) / 1000) } : {}),
    heldSec: round1((phases.restoredAt - phases.injectedAt) / 1000),
    ...(phases.healthyAt !== undefined ? { healthyAgainSec: round1((phases.healthyAt - phases.restoredAt) / 1000) } : {}),
    streams: out,
    lost: Object.values(out).reduce((n, f) => n + f.lost, 0),
  };
}

const sec = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(1)} s`);

/** A stream's cell: `gap 12.3 s, 0/612 lost`. */
function streamCell(f: StreamFigures | undefined): string {
  return f ? `gap ${sec(f.longestGapSec)}, ${f.lost}/${f.acked} lost` : '-';
}

/**
 * The drill's table: one row per scenario, the measured figures beside the design document's
 * (SEED_FIGURES). Plain text, columns padded; README "drill" shows an example.
 */
export function renderDrillTable(rows: readonly ScenarioFigures[]): string {
  const head = ['scenario', 'target', 'detected', 'DB writes (VIP:5000)', 'broker publishes', 'worker tasks', 'healthy again', 'document: detection', 'document: impact'];
  const body = rows.map((r) => [
    r.scenario,
    `${r.target} (${r.method})`,
    sec(r.detectedSec),
    streamCell(r.streams.db),
    streamCell(r.streams.broker),
    streamCell(r.streams.tasks),
    r.healthyAgainSec === undefined ? 'no' : `after ${sec(r.healthyAgainSec)}`,
    SEED_FIGURES[r.scenario].detection,
    SEED_FIGURES[r.scenario].impact,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  const lost = rows.reduce((n, r) => n + r.lost, 0);
  const verdict = lost === 0 ? 'no acknowledged item lost' : `${lost} acknowledged item(s) LOST`;
  return [fmt(head), ...body.map(fmt), '', `${rows.length} scenario(s); ${verdict}. Gaps: longest time without an acknowledgement from the injection to 30 s after the restore.`].join('\n');
}
