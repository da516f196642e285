/**
 * Runs a drill: checks `status` is healthy, takes the run lock, and for each scenario starts the
 * load on an Airflow host, schedules the undo timer on the target, injects the failure, watches
 * `status` until it shows it, restores the component after the hold, waits for `status` healthy,
 * stops the load and measures what it recorded. Every drill object (table, queue, task results,
 * nft table, timer) is removed on the way out, also when a scenario fails.
 */
import { randomBytes } from 'node:crypto';
import { sh } from '../core/cmd.js';
import { ExitCode } from '../core/errors.js';
import { maskSecrets } from '../core/secret.js';
import { allSecrets, type ClusterSecrets } from '../inventory/secrets.js';
import type { Inventory } from '../inventory/schema.js';
import type { DrillPhase, Reporter } from '../run/events.js';
import { acquireLockCmd, describeHolder, LOCK_HELD_EXIT, releaseLockCmd, type LockHolder } from '../run/lock.js';
import { collectStatus } from '../run/status.js';
import type { StatusReport } from '../status/model.js';
import type { Connection, ExecResult, Transport } from '../ssh/transport.js';
import { loadCommand, loadConfig, loadScript, loadStdin, parseLoadLine } from './load.js';
import { scenarioFigures, type ScenarioFigures, type StreamName, type StreamRecord } from './report.js';
import { clusterView, DRILL_OBJECTS, planScenario, showsFailure, type DrillSettings, type ScenarioName, type ScenarioPlan } from './scenarios.js';

/** What a drill needs from its caller (the CLI, or a test). */
export interface DrillContext {
  inventory: Inventory;
  secrets: ClusterSecrets;
  transport: Transport;
  /** Receives the `drill` events (and the journal). */
  reporter: Reporter;
  /** `user@machine`, for the lock. */
  operator: string;
  /** The command line, for the lock. */
  command: string;
  now?: () => number;
}

/** Settings of a drill (CLI flags). */
export interface DrillOptions extends DrillSettings {
  scenarios: ScenarioName[];
  /** Seconds of load before the injection (the baseline). */
  baselineSec: number;
  /** Seconds to wait for `status` healthy after a restore, and before the first scenario. */
  healthyTimeoutSec: number;
  /** Seconds the task load waits for results once the load stopped. */
  settleSec: number;
}

export const DEFAULT_DRILL = { holdSec: 60, baselineSec: 5, healthyTimeoutSec: 300, settleSec: 120 } as const;

/** The outcome: figures per scenario that ran to its end, the exit code (README "Exit codes"), and why it is not 0. */
export interface DrillResult {
  exitCode: number;
  figures: ScenarioFigures[];
  error?: string;
  /** The status report that refused the drill (exit 2). */
  refusedBy?: StatusReport;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds the undo timer waits after the hold: time for the drill's own restore to come first. */
export const UNDO_MARGIN_SEC = 120;

class DrillStepError extends Error {}

function check(res: ExecResult, what: string, secrets: ClusterSecrets): void {
  if (res.code !== 0) throw new DrillStepError(`${what}: exit ${res.code}: ${maskSecrets(res.stderr.trim().split('\n').slice(-3).join(' | '), allSecrets(secrets))}`);
}

/**
 * Runs `opts.scenarios` one after the other. Never throws for a scenario's failure: the scenario
 * ends with a `failed` event (after its undo) and the exit code is 1. Exit 2 when `status` is not
 * healthy at the start (nothing done), 4 when the run lock is held.
 */
export async function runDrill(ctx: DrillContext, opts: DrillOptions): Promise<DrillResult> {
  const now = ctx.now ?? Date.now;
  const inv = ctx.inventory;
  const statusCtx = { inventory: inv, secrets: ctx.secrets };
  const status = () => collectStatus(statusCtx, ctx.transport, { connectTimeoutSec: 3 });
  const emit = (scenario: string, phase: DrillPhase, host: string, message: string, figures?: ScenarioFigures) =>
    ctx.reporter.emit({ type: 'drill', scenario, phase, host, time: new Date(now()).toISOString(), message, ...(figures ? { figures } : {}) });

  const first = await status();
  if (first.exitCode !== 0) return { exitCode: ExitCode.badInput, figures: [], error: `status is not healthy, nothing was done: ${first.summary}`, refusedBy: first };

  const lockHost = inv.hosts[0]?.name as string;
  const lockConn = await ctx.transport.connect(lockHost);
  const holder: LockHolder = { holder: ctx.operator, time: new Date(now()).toISOString(), command: ctx.command, pid: process.pid };
  const taken = await lockConn.exec(acquireLockCmd(holder));
  if (taken.code === LOCK_HELD_EXIT) return { exitCode: ExitCode.lockHeld, figures: [], error: `the run lock on ${lockHost} is held by ${describeHolder(taken.stdout)}` };
  check(taken, `take the run lock on ${lockHost}`, ctx.secrets);

  const figures: ScenarioFigures[] = [];
  let error: string | undefined;
  let report = first;
  try {
    for (const name of opts.scenarios) {
      const plan = planScenario(inv, name, clusterView(inv, report), opts);
      emit(name, 'start', plan.target, plan.describe);
      try {
        const out = await runScenario(ctx, opts, plan, { status, emit, now });
        figures.push(out.figures);
        report = out.report;
        emit(name, 'end', plan.target, `${out.figures.lost} acknowledged item(s) lost`, out.figures);
        if (out.report.exitCode !== 0) {
          error = `${name}: status not healthy ${opts.healthyTimeoutSec} s after the restore: ${out.report.summary}`;
          break;
        }
      } catch (e) {
        error = `${name}: ${(e as Error).message}`;
        emit(name, 'failed', plan.target, (e as Error).message);
        break;
      }
    }
  } finally {
    await lockConn.exec(releaseLockCmd(holder)).catch(() => undefined);
  }
  const lost = figures.reduce((n, f) => n + f.lost, 0);
  if (!error && lost > 0) error = `${lost} acknowledged item(s) lost`;
  return { exitCode: error ? ExitCode.taskFailed : ExitCode.ok, figures, ...(error ? { error } : {}) };
}

interface Helpers {
  status: () => Promise<StatusReport>;
  emit: (scenario: string, phase: DrillPhase, host: string, message: string, figures?: ScenarioFigures) => void;
  now: () => number;
}

/** The load running on its host: resolves `ready` once every stream was acknowledged once. */
function startLoad(conn: Connection, ctx: DrillContext, opts: DrillOptions, plan: ScenarioPlan, runId: string, now: () => number) {
  const maxSeconds = opts.baselineSec + opts.undoAfterSec + opts.healthyTimeoutSec + 120;
  const cfg = loadConfig(ctx.inventory, ctx.secrets, { runId, plan, maxSeconds, settleSec: opts.settleSec });
  let buf = '';
  let result: Record<string, unknown> | undefined;
  let markReady: (offsetMs: number) => void = () => undefined;
  const ready = new Promise<number>((resolve) => (markReady = resolve));
  const done = conn.exec(loadCommand(ctx.inventory), {
    stdin: loadStdin(cfg, loadScript()),
    timeoutSec: maxSeconds + opts.settleSec + 300,
    onStdout: (chunk) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const ev = parseLoadLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (ev?.['event'] === 'ready') markReady(Number(ev['t']) - now());
        if (ev?.['event'] === 'result') result = ev;
      }
    },
  });
  return { ready, done, result: () => result };
}

/** Resolves with `p`, or rejects after `sec` seconds. */
async function within<T>(p: Promise<T>, sec: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DrillStepError(`${what}: not within ${sec} s`)), sec * 1000)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function runScenario(ctx: DrillContext, opts: DrillOptions, plan: ScenarioPlan, h: Helpers): Promise<{ figures: ScenarioFigures; report: StatusReport }> {
  const { now, emit, status } = h;
  const inv = ctx.inventory;
  const runId = randomBytes(4).toString('hex');
  const loadConn = await ctx.transport.connect(plan.loadHost);
  const target = await ctx.transport.connect(plan.target);
  check(await loadConn.exec(sh`rm -f ${DRILL_OBJECTS.stopFile}`), `clear the stop file on ${plan.loadHost}`, ctx.secrets);
  const load = startLoad(loadConn, ctx, opts, plan, runId, now);
  const stopLoad = () => loadConn.exec(sh`touch ${DRILL_OBJECTS.stopFile}`);
  let injected = false;
  let restored = false;
  try {
    const failedEarly = load.done.then((r) => {
      throw new DrillStepError(`the load on ${plan.loadHost} ended before it was ready (exit ${r.code}): ${maskSecrets(r.stderr.trim().split('\n').slice(-5).join(' | '), allSecrets(ctx.secrets))}`);
    });
    failedEarly.catch(() => undefined);
    const offsetMs = await within(Promise.race([load.ready, failedEarly]), 120, `the load on ${plan.loadHost} acknowledged by every stream`);
    emit(plan.scenario, 'load', plan.loadHost, `load running on ${plan.loadHost}; ${opts.baselineSec} s of baseline`);
    await sleep(opts.baselineSec * 1000);

    check(await target.exec(plan.scheduleUndo), `schedule the undo timer ${plan.undoUnit} on ${plan.target}`, ctx.secrets);
    const injectedAt = now();
    injected = true;
    check(await target.exec(plan.inject), `inject the failure on ${plan.target}`, ctx.secrets);
    emit(plan.scenario, 'injected', plan.target, plan.method === 'power-off' ? `${plan.target} powered off (traffic dropped)` : `${plan.units.join(', ')} killed on ${plan.target}`);

    let detectedAt: number | undefined;
    while (now() < injectedAt + opts.holdSec * 1000) {
      const t = now();
      const r = await status();
      if (detectedAt === undefined && showsFailure(plan, inv, r)) {
        detectedAt = t;
        emit(plan.scenario, 'detected', plan.target, `status shows it after ${((t - injectedAt) / 1000).toFixed(1)} s: ${r.summary}`);
      }
      if (now() - t < 1000) await sleep(1000 - (now() - t));
    }

    check(await target.exec(plan.restore), `restore ${plan.target}`, ctx.secrets);
    const restoredAt = now();
    restored = true;
    check(await target.exec(plan.cancelUndo), `cancel the undo timer on ${plan.target}`, ctx.secrets);
    emit(plan.scenario, 'restored', plan.target, `restored after ${((restoredAt - injectedAt) / 1000).toFixed(1)} s; undo timer cancelled`);

    let report = await status();
    while (report.exitCode !== 0 && now() < restoredAt + opts.healthyTimeoutSec * 1000) {
      await sleep(2000);
      report = await status();
    }
    const healthyAt = report.exitCode === 0 ? now() : undefined;
    if (healthyAt !== undefined) emit(plan.scenario, 'healthy', plan.target, `status healthy ${((healthyAt - restoredAt) / 1000).toFixed(1)} s after the restore`);

    // Some load after the recovery, so a gap that ended late is seen ending.
    await sleep(opts.baselineSec * 1000);
    const stoppedAt = now();
    check(await stopLoad(), `stop the load on ${plan.loadHost}`, ctx.secrets);
    const res = await within(load.done, opts.settleSec + 180, `the load's checks on ${plan.loadHost}`);
    const result = load.result();
    if (!result) throw new DrillStepError(`the load on ${plan.loadHost} printed no result (exit ${res.code}): ${maskSecrets(res.stderr.trim().split('\n').slice(-5).join(' | '), allSecrets(ctx.secrets))}`);
    const streams = result['streams'] as Partial<Record<StreamName, StreamRecord>>;
    const figures = scenarioFigures(plan, { injectedAt, ...(detectedAt !== undefined ? { detectedAt } : {}), restoredAt, ...(healthyAt !== undefined ? { healthyAt } : {}), stoppedAt }, streams, offsetMs);
    return { figures, report };
  } catch (e) {
    // Undo what this scenario did, then stop the load and remove its objects.
    if (injected && !restored) {
      await target.exec(plan.restore).catch(() => undefined);
      await target.exec(plan.cancelUndo).catch(() => undefined);
    }
    await stopLoad().catch(() => undefined);
    await within(load.done, 60, 'the load to stop').catch(() => undefined);
    const cleanup = loadConfig(inv, ctx.secrets, { runId, maxSeconds: 120, settleSec: 0 });
    await loadConn.exec(loadCommand(inv), { stdin: loadStdin(cleanup, loadScript()), timeoutSec: 180 }).catch(() => undefined);
    throw e;
  } finally {
    await loadConn.exec(sh`rm -f ${DRILL_OBJECTS.stopFile}`).catch(() => undefined);
  }
}
