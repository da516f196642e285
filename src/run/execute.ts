import { randomBytes } from 'node:crypto';
import type { Cmd } from '../core/cmd.js';
import { ExitCode, InputError, LockHeldError, PreflightError, TaskFailedError, UnreachableError, AirflowHaError } from '../core/errors.js';
import { describeOp, type Op } from '../core/op.js';
import { maskSecrets, type Secret } from '../core/secret.js';
import type { FactSet } from '../facts/fact.js';
import { hostFacts as hostFactsFact, type HostFacts } from '../facts/host.js';
import { SECRET_NAMES, secretsFingerprint, type ClusterSecrets } from '../inventory/secrets.js';
import type { Host, Inventory, Role } from '../inventory/schema.js';
import { AIRFLOW_INTERPRETER, preflightRequest } from '../preflight/gather.js';
import { hostPins } from '../preflight/pins.js';
import { preflight, type Finding, type PreflightHost } from '../preflight/rules.js';
import { waitLoop } from '../tasks/command.js';
import type { Handler, Task, TaskPlan } from '../tasks/task.js';
import type { Connection, Transport } from '../ssh/transport.js';
import type { HostSummary, Reporter } from './events.js';
import { gatherFacts } from './facts.js';
import { compareFingerprints, fingerprintFact, writeFingerprintOps, FINGERPRINT_PATH, type FingerprintState } from './fingerprint.js';
import { acquireLockCmd, describeHolder, LOCK_HELD_EXIT, releaseLockCmd, type LockHolder } from './lock.js';
import { selectHosts, type OperatorInputs, type PlayContext, type Playbook, type Selector, type Step } from './playbook.js';
import { selectSteps, type StepStart } from './steps.js';

/** Everything a run needs, passed in (no globals): the CLI builds it, tests build fakes. */
export interface RunOptions {
  playbook: Playbook;
  inventory: Inventory;
  secrets: ClusterSecrets;
  /** Further values masked in every output (rotate-secret: the value being replaced). */
  alsoMask?: readonly Secret[];
  /** Inputs from the operator's machine for the tasks (DAG folder, key pairs, trusted host keys). */
  inputs?: OperatorInputs;
  transport: Transport;
  reporter: Reporter;
  /** Check mode: gather facts and report what would change, change nothing, take no lock. */
  check: boolean;
  /** Restricts the run to these hosts (`--limit`). */
  limit: Selector;
  /**
   * Where the run starts (`--from-step`, `--retry-failed`): the steps before `start.step` do not
   * run; with `start.hosts`, only those hosts run tasks, and each gate still checks the hosts a
   * full run's gate checks (see selectSteps in ./steps.ts). Default: the first step, every host.
   */
  start?: StepStart;
  /** The id of the failed run whose hosts this run retries (`--retry-failed`), for run_start. */
  retryOf?: string;
  /**
   * The command line that resumes this run from the step `step` that failed (for the run_end event
   * and the failure screen); without it, a failed run names no such command.
   */
  resumeCommand?: (step: string) => string;
  /** The command line, for the lock holder and the journal. */
  command: string;
  /** `user@machine` of the operator, for the lock. */
  operator: string;
  runId?: string;
  /** Seconds since some epoch; injectable for tests. */
  clock?: () => number;
  /**
   * Run the preflight (src/preflight/rules.ts) on the facts read at connect: findings are reported,
   * a refusal ends the run with exit 2 before the lock (in check mode: after the plan was shown).
   */
  preflight?: boolean;
  /** This machine's wall clock in milliseconds since the epoch (the preflight's clock rule); default Date.now. */
  wallClock?: () => number;
  /**
   * Guard the secrets fingerprint (src/run/fingerprint.ts): read it on every host at connect; a
   * host holding another set's fingerprint ends the run with exit 2 before the lock, unless
   * `newCluster`; outside check mode, write it on every targeted host that lacks it (or differs,
   * with `newCluster`) right after taking the lock. `file` and `created` (keys this run generated)
   * go into the refusal's message.
   */
  secretsGuard?: SecretsGuard;
}

/** See {@link RunOptions.secretsGuard}. */
export interface SecretsGuard {
  /** The secrets file, for messages. */
  file: string;
  /** Keys the secrets file lacked and this run generated. */
  created: readonly string[];
  /** The secrets that came from a source (the inventory's `secrets:`), with the kind of each. */
  sourced?: ReadonlyArray<{ name: string; kind: string }>;
  /** The operator says these hosts are to become a new cluster with these secrets (`--new-cluster`). */
  newCluster: boolean;
  /** How to run again, for messages (e.g. `airflow-ha bootstrap -i site.yaml`). */
  command: string;
  /**
   * rotate-secret: the secrets before the rotation (the run's `secrets` are the set after it). A
   * host holding their fingerprint is accepted (`previous`), and the fingerprint of the run's
   * secrets is written on every target that does not hold it only once every step succeeded: a
   * rotation that stops midway leaves the hosts' fingerprint as it was, and only rotate-secret
   * accepts hosts of either set.
   */
  previous?: ClusterSecrets;
}

/** The outcome of a run. `exitCode` follows {@link ExitCode}. */
export interface RunResult {
  runId: string;
  exitCode: ExitCode;
  hosts: HostSummary[];
  /** Total changes (tasks changed + handlers run). */
  changed: number;
  error?: AirflowHaError;
}

const TAIL_LINES = 20;

/** The last `n` lines of `text`. */
export function tail(text: string, n = TAIL_LINES): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/** All secret values of the cluster, for masking output. */
function secretList(secrets: ClusterSecrets): Secret[] {
  return Object.values(secrets) as Secret[];
}

class HostFailure extends Error {
  constructor(readonly failure: TaskFailedError) {
    super(failure.message);
  }
}

/**
 * Runs a playbook: connect every targeted host (an unreachable one stops the run before anything
 * changes, exit 3), take the run lock (exit 4 if held), then each step in order — its hosts in
 * parallel (or `serial` at a time once a host has something to change: a rolling step plans every
 * host in parallel first, and hosts with nothing to do never wait for one another; check mode never
 * rolls), facts gathered in one round trip per host, only the missing ops
 * executed, handlers once at the end of the step, a barrier, then the step's gate. The first failure
 * stops the run before the next step (exit 1; run_end names the step, the hosts that failed in it
 * and, with `resumeCommand`, the command that resumes from it). `start` skips the steps before it
 * and, for a retry, runs tasks on its hosts only (gates as in a full run). Never throws for those
 * cases: the result carries them.
 */
export async function runPlaybook(opts: RunOptions): Promise<RunResult> {
  const clock = opts.clock ?? (() => performance.now() / 1000);
  const runId = opts.runId ?? `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
  const t0 = clock();
  const { inventory: inv, reporter } = opts;
  const secrets = [...secretList(opts.secrets), ...(opts.alsoMask ?? [])];
  const mask = (s: string, extra: Secret[] = []) => maskSecrets(s, [...secrets, ...extra]);
  const showDiff = (plan: TaskPlan) => shownDiff(plan, secrets, mask);

  const selected = selectSteps(opts.playbook, inv, opts.limit, opts.start).filter((s) => s.runs);
  const runsOn = (h: Host) => selected.filter((s) => s.hosts.some((x) => x.name === h.name)).map((s) => s.step);
  const targets = inv.hosts.filter((h) => runsOn(h).length > 0);
  // Hosts only a gate reads (a retry): connected and their host facts read, no task run.
  // Check mode runs no gate: it reads no host for one.
  const gateOnly = opts.check ? [] : inv.hosts.filter((h) => !targets.includes(h) && selected.some((s) => s.gateHosts.includes(h)));
  const summary = new Map<string, HostSummary>(targets.map((h) => [h.name, { host: h.name, ok: 0, changed: 0, failed: 0, seconds: 0 }]));

  reporter.emit({
    type: 'run_start',
    runId,
    time: new Date().toISOString(),
    command: opts.command,
    playbook: opts.playbook.name,
    check: opts.check,
    hosts: targets.map((h) => h.name),
    limit: selectHosts(inv, opts.limit).map((h) => h.name),
    ...(opts.start && opts.start.step > 0 ? { fromStep: (opts.playbook.steps[opts.start.step] as Step).name } : {}),
    ...(opts.retryOf ? { retryOf: opts.retryOf } : {}),
  });

  const finish = (exitCode: ExitCode, error?: AirflowHaError, failed?: { step: string; hosts: string[] }): RunResult => {
    const hosts = [...summary.values()].map((s) => ({ ...s, seconds: round(s.seconds) }));
    const changed = hosts.reduce((a, h) => a + h.changed, 0);
    const resume = failed && opts.resumeCommand ? opts.resumeCommand(failed.step) : undefined;
    reporter.emit({
      type: 'run_end',
      runId,
      time: new Date().toISOString(),
      ok: exitCode === ExitCode.ok,
      exitCode,
      seconds: round(clock() - t0),
      hosts,
      ...(error ? { error: mask(error.message) } : {}),
      ...(failed ? { failedStep: failed.step, failedHosts: failed.hosts } : {}),
      ...(resume ? { resume: mask(resume) } : {}),
    });
    return { runId, exitCode, hosts, changed, ...(error ? { error } : {}) };
  };

  // 1. Connect everything first: an unreachable host stops the run before any change. The preflight's
  // facts come in the same round trip as the host facts.
  const lockHost = inv.hosts[0] as Host;
  const connectSet = inv.hosts.filter((h) => targets.includes(h) || gateOnly.includes(h) || (!opts.check && h === lockHost));
  const conns = new Map<string, Connection>();
  const facts = new Map<string, HostFacts>();
  const preflightHosts: PreflightHost[] = [];
  const fingerprints = new Map<string, string | undefined>();
  const wall = opts.wallClock ?? Date.now;
  const unreachable: UnreachableError[] = [];
  await Promise.all(
    connectSet.map(async (h) => {
      const start = clock();
      try {
        const conn = await opts.transport.connect(h.name);
        const roles = runRoles(runsOn(h), h);
        const request = opts.preflight ? preflightRequest(inv, roles) : undefined;
        const sentAt = wall() / 1000;
        const set = await gatherFacts(conn, [hostFactsFact, ...(opts.secretsGuard ? [fingerprintFact] : []), ...(request?.facts ?? [])]);
        const receivedAt = wall() / 1000;
        if (opts.secretsGuard) fingerprints.set(h.name, set.get(fingerprintFact));
        if (request) {
          const pf = request.read(set, sentAt, receivedAt);
          const family = pf.os.family;
          preflightHosts.push({ host: h, roles, pins: family ? hostPins(inv, roles, family) : [], facts: pf });
          // An OS of neither family has no host facts: the preflight's rule os refuses it by name.
          if (family) facts.set(h.name, set.get(hostFactsFact));
        } else {
          facts.set(h.name, set.get(hostFactsFact));
        }
        conns.set(h.name, conn);
        reporter.emit({ type: 'connect', host: h.name, address: h.address, ok: true, seconds: round(clock() - start) });
      } catch (e) {
        const err = e instanceof UnreachableError ? e : new UnreachableError(h.name, h.address, (e as Error).message);
        unreachable.push(err);
        reporter.emit({ type: 'connect', host: h.name, address: h.address, ok: false, seconds: round(clock() - start), error: err.reason });
      }
    }),
  );
  if (unreachable.length > 0) {
    const order = new Map(connectSet.map((h, i) => [h.name, i]));
    unreachable.sort((a, b) => (order.get(a.host) ?? 0) - (order.get(b.host) ?? 0));
    return finish(ExitCode.unreachable, UnreachableError.many(unreachable));
  }

  // 1a. The secrets the hosts were set up with: another set is refused before anything changes.
  let fingerprint: { line: string; states: Map<string, FingerprintState> } | undefined;
  if (opts.secretsGuard) {
    const guard = opts.secretsGuard;
    const ordered = new Map(connectSet.map((h) => [h.name, fingerprints.get(h.name)]));
    const line = secretsFingerprint(opts.secrets, inv.cluster.name);
    const states = compareFingerprints(opts.secrets, inv.cluster.name, ordered, line);
    if (guard.previous) {
      const others = new Map([...ordered].filter(([host]) => states.get(host) === 'different'));
      for (const [host, st] of compareFingerprints(guard.previous, inv.cluster.name, others)) if (st === 'same') states.set(host, 'previous');
    }
    for (const [host, status] of states) reporter.emit({ type: 'fingerprint', host, status });
    const different = [...states].filter(([, st]) => st === 'different').map(([host]) => host);
    if (different.length > 0 && !guard.newCluster) return finish(ExitCode.badInput, secretsMismatch(guard, different, states));
    fingerprint = { line, states };
  }

  // 1b. The preflight: every finding reported; a refusal stops the run here, before the lock and any
  // step (check mode shows the plan first, unless a host's OS left it without facts).
  let refused: PreflightError | undefined;
  if (opts.preflight) {
    const order = new Map(inv.hosts.map((h, i) => [h.name, i]));
    preflightHosts.sort((a, b) => (order.get(a.host.name) ?? 0) - (order.get(b.host.name) ?? 0));
    const findings = preflight(inv, preflightHosts, { interpreter: AIRFLOW_INTERPRETER });
    for (const f of findings) reporter.emit({ type: 'preflight', ...f });
    const refusals = findings.filter((f: Finding) => f.severity === 'refuse');
    if (refusals.length > 0) {
      refused = new PreflightError(refusals);
      if (!opts.check || connectSet.some((h) => !facts.has(h.name))) return finish(ExitCode.badInput, refused);
    }
  }

  // 2. The run lock on the inventory's first host (not in check mode: plan changes nothing).
  let holder: LockHolder | undefined;
  if (!opts.check) {
    holder = { holder: opts.operator, time: new Date().toISOString(), command: opts.command, pid: process.pid };
    const conn = conns.get(lockHost.name) as Connection;
    const res = await conn.exec(acquireLockCmd(holder));
    if (res.code === LOCK_HELD_EXIT) return finish(ExitCode.lockHeld, new LockHeldError(lockHost.name, describeHolder(res.stdout)));
    if (res.code !== 0) {
      return finish(
        ExitCode.taskFailed,
        new TaskFailedError(lockHost.name, '(lock)', 'take the run lock', acquireLockCmd(holder).toString(), res.code, mask(tail(res.stderr))),
      );
    }
  }

  /** Records the run's fingerprint on every target that does not hold it; the failure, if any. */
  const recordFingerprint = async (fp: { line: string; states: Map<string, FingerprintState> }): Promise<RunResult | undefined> => {
    for (const h of targets) {
      if (fp.states.get(h.name) === 'same') continue;
      const conn = conns.get(h.name) as Connection;
      for (const op of writeFingerprintOps(fp.line)) {
        const err = await runOp(conn, op);
        if (err) {
          return finish(
            ExitCode.taskFailed,
            new TaskFailedError(h.name, '(secrets)', `write ${FINGERPRINT_PATH}`, op.kind === 'exec' ? op.cmd.toString() : describeOp(op), err.code, mask(tail(err.stderr))),
          );
        }
      }
      reporter.emit({ type: 'fingerprint', host: h.name, status: 'written' });
    }
    return undefined;
  };
  const rotation = Boolean(opts.secretsGuard?.previous);

  try {
    if (fingerprint && !opts.check && !rotation) {
      // Before the first step: from here on these hosts hold (some of) these secrets.
      const failed = await recordFingerprint(fingerprint);
      if (failed) return failed;
    }
    for (const { step, hosts, gateHosts } of selected) {
      const stepStart = clock();
      reporter.emit({ type: 'step_start', step: step.name, hosts: hosts.map((h) => h.name) });
      const failures: TaskFailedError[] = [];
      const counts = { ok: 0, changed: 0, failed: 0 };
      const hostContext = (h: Host) => playContext(opts, facts, h);
      const runHost = async (h: Host, planned?: QuietPlan): Promise<void> => {
        const sum = summary.get(h.name) as HostSummary;
        const tally: HostStepResult = { ok: 0, changed: 0, seconds: 0 };
        try {
          await runHostStep(step, hostContext(h), conns.get(h.name) as Connection, opts.check, reporter, { mask, showDiff }, clock, tally, planned);
        } catch (e) {
          const failure =
            e instanceof HostFailure
              ? e.failure
              : new TaskFailedError(h.name, step.name, '(step)', '', null, mask((e as Error).message));
          failures.push(failure);
          sum.failed += 1;
          counts.failed += 1;
        } finally {
          // What a host did before it failed still counts.
          sum.ok += tally.ok;
          sum.changed += tally.changed;
          sum.seconds += tally.seconds;
          counts.ok += tally.ok;
          counts.changed += tally.changed;
        }
      };
      // Check mode changes nothing, so a rolling step has nothing to roll: every host at once.
      const batchSize = step.serial && step.serial > 0 && !opts.check ? step.serial : hosts.length;
      let rolling = hosts;
      if (batchSize < hosts.length) {
        // A rolling step plans every host first, in parallel (facts are read-only: one round trip
        // per host). The hosts up to the first one with a change have nothing to do: they finish
        // now, together, on the facts just read. From the first host with a change on, the step
        // rolls as before, each host planning again at its turn (a change on one host may change
        // what the next one sees, e.g. a RabbitMQ node joining the cluster).
        const planned = await Promise.all(hosts.map((h) => planQuiet(step, hostContext(h), conns.get(h.name) as Connection)));
        const firstBusy = planned.findIndex((p) => p === undefined);
        const quiet = firstBusy === -1 ? hosts.length : firstBusy;
        await Promise.all(hosts.slice(0, quiet).map((h, i) => runHost(h, planned[i])));
        rolling = hosts.slice(quiet);
      }
      const skipped: string[] = [];
      for (let i = 0; i < rolling.length; i += batchSize) {
        const batch = rolling.slice(i, i + batchSize);
        if (failures.length > 0) {
          // A rolling step stops at the first failed batch: the remaining hosts keep their old state.
          skipped.push(...batch.map((h) => h.name));
          continue;
        }
        await Promise.all(batch.map((h) => runHost(h)));
      }
      let gate: { name: string; ok: boolean; hosts: number; seconds: number } | undefined;
      if (failures.length === 0 && step.gate && !opts.check) {
        const gateStart = clock();
        const gateFailure = await runGate(step, gateHosts, conns, facts, opts, reporter, mask, clock);
        if (gateFailure) failures.push(gateFailure);
        gate = { name: step.gate.name, ok: !gateFailure, hosts: gateHosts.length, seconds: round(clock() - gateStart) };
      }
      reporter.emit({ type: 'step_end', step: step.name, seconds: round(clock() - stepStart), ...counts, skipped, ...(gate ? { gate } : {}) });
      if (failures.length > 0) {
        // Check mode past a refusal: the plan of a run the preflight refuses may fail where the run
        // never would go (e.g. asking etcd over the scheme it does not serve); the refusal is the answer.
        if (refused) return finish(ExitCode.badInput, refused);
        const failedHosts = new Set(failures.map((f) => f.host));
        return finish(ExitCode.taskFailed, failures[0], { step: step.name, hosts: inv.hosts.filter((h) => failedHosts.has(h.name)).map((h) => h.name) });
      }
    }
    if (fingerprint && !opts.check && rotation) {
      // A rotation: every step done, so every component now runs with the new set.
      const failed = await recordFingerprint(fingerprint);
      if (failed) return failed;
    }
    return refused ? finish(ExitCode.badInput, refused) : finish(ExitCode.ok);
  } finally {
    if (holder) {
      await conns.get(lockHost.name)?.exec(releaseLockCmd(holder)).catch(() => undefined);
    }
  }
}

/**
 * The diff of a task as it may be shown: current secrets masked; and no line at all when the task
 * writes a file whose new content holds a current secret but its diff was not made from redacted
 * content (a file task without `holdsSecrets`): the old content may hold an old secret, which
 * masking cannot know.
 */
export function shownDiff(plan: TaskPlan, secrets: readonly Secret[], mask: (s: string) => string): string | undefined {
  if (!plan.diff) return undefined;
  if (plan.diffRedacted) return mask(plan.diff);
  const values = secrets.map((s) => s.reveal()).filter((v) => v.length >= 4);
  // The last such write is the file itself (a validated file is first written to a temp copy).
  const put = [...plan.ops].reverse().find((op) => op.kind === 'put' && values.some((v) => op.content.includes(v)));
  if (put && put.kind === 'put') return `${put.path}: content hidden: holds secrets\n`;
  return mask(plan.diff);
}

/** The refusal of a run whose secrets differ from those `different` hosts were set up with. */
function secretsMismatch(guard: SecretsGuard, different: string[], states: Map<string, FingerprintState>): InputError {
  const same = [...states].filter(([, st]) => st === 'same').map(([host]) => host);
  if (guard.previous) {
    return new InputError(
      `${different.length} host(s) hold a secrets fingerprint in ${FINGERPRINT_PATH} of neither the secrets before this rotation nor the ones after it: ${different.join(', ')}; nothing was changed. ` +
        `The other secrets (from ${guard.file}${guard.sourced?.length ? ' and their sources' : ''}) are not the ones the cluster was set up with, or another secret's rotation is unfinished: ` +
        `restore them, finish that rotation, then run \`${guard.command}\` again.`,
    );
  }
  const generated =
    guard.created.length === 0
      ? ''
      : guard.created.length === SECRET_NAMES.length
        ? `${guard.file} did not exist and was generated by this run: these are new secrets, not the cluster's. `
        : `${guard.file} lacked ${guard.created.join(', ')}, generated by this run. `;
  const sourced = guard.sourced ?? [];
  const where = sourced.length === 0 ? `the secrets in ${guard.file} are` : sourced.length === SECRET_NAMES.length ? 'the secrets from their sources are' : `the secrets (from ${guard.file} and from sources) are`;
  const fromSources =
    sourced.length === 0
      ? ''
      : `${sourced.length === 1 ? 'This secret comes' : 'These secrets come'} from a source, which may now give another value than the hosts were set up with: ` +
        `${sourced.map((s) => `${s.name} (${s.kind})`).join(', ')}; no secret with a source is ever generated. `;
  return new InputError(
    `${where} not the ones the cluster was set up with: ${different.length} host(s) hold a different secrets fingerprint ` +
      `in ${FINGERPRINT_PATH}: ${different.join(', ')}${same.length ? ` (the same: ${same.join(', ')})` : ''}; nothing was changed.\n` +
      generated +
      fromSources +
      `Restore the secrets these hosts were set up with (the secrets file from your backup to ${guard.file}${sourced.length ? ', the sourced values in your store' : ''}) and run \`${guard.command}\` again. ` +
      `Only if these hosts are to be set up anew as a new cluster with these secrets, run it with --new-cluster: every password, the ` +
      `Erlang cookie and the fernet key on the hosts are then replaced (a running database keeps its old role passwords, and what the old fernet key encrypted cannot be read).`,
  );
}

/** What a task builder of a step gets on host `h`. */
function playContext(opts: RunOptions, facts: Map<string, HostFacts>, h: Host): PlayContext {
  return { inventory: opts.inventory, secrets: opts.secrets, host: h, facts: facts.get(h.name) as HostFacts, ...(opts.inputs ? { operator: opts.inputs } : {}) };
}

/** A host's tasks for a step and the facts they were planned on, when none of them changes anything. */
interface QuietPlan {
  tasks: Task[];
  facts: FactSet;
}

/**
 * Plans one host's part of a step without executing anything: builds its tasks, gathers their facts
 * in one round trip and plans each. Returns the tasks and facts when no task would change anything
 * (their remaining ops are read-only waits, see TaskPlan), else undefined — also when building,
 * gathering or planning fails: the host then runs its turn as usual, which reports the failure
 * with every detail.
 */
async function planQuiet(step: Step, ctx: PlayContext, conn: Connection): Promise<QuietPlan | undefined> {
  try {
    const tasks = step.tasks(ctx);
    const facts = await gatherFacts(conn, tasks.flatMap((t) => [...t.facts(ctx.facts)]));
    return tasks.every((t) => !t.plan(facts, ctx.facts).changed) ? { tasks, facts } : undefined;
  } catch {
    return undefined;
  }
}

interface HostStepResult {
  ok: number;
  changed: number;
  seconds: number;
}

/**
 * One host's part of a step, counting into `result`. Throws HostFailure with every detail of the
 * failing task. `planned`: tasks and facts {@link planQuiet} already read (no second round trip).
 */
async function runHostStep(
  step: Step,
  ctx: PlayContext,
  conn: Connection,
  check: boolean,
  reporter: Reporter,
  redact: { mask: (s: string, extra?: Secret[]) => string; showDiff: (plan: TaskPlan) => string | undefined },
  clock: () => number,
  result: HostStepResult,
  planned?: QuietPlan,
): Promise<void> {
  const { mask } = redact;
  const host = ctx.host.name;
  const start = clock();
  const elapsed = () => {
    result.seconds = clock() - start;
  };
  const fail = (task: string, command: string, code: number | null, stderr: string): never => {
    elapsed();
    throw new HostFailure(new TaskFailedError(host, step.name, task, command, code, mask(tail(stderr))));
  };
  let tasks: Task[];
  try {
    tasks = planned ? planned.tasks : step.tasks(ctx);
  } catch (e) {
    reporter.emit({ type: 'task', step: step.name, host, task: '(build tasks)', status: 'failed', changes: [], seconds: 0, error: mask((e as Error).message) });
    return fail('(build tasks)', '', null, (e as Error).message);
  }
  const notified = new Map<string, Handler>();

  const gather = async (from: number): Promise<FactSet> => {
    try {
      return await gatherFacts(conn, tasks.slice(from).flatMap((t) => [...t.facts(ctx.facts)]));
    } catch (e) {
      return fail('(gather facts)', '', null, (e as Error).message);
    }
  };

  let factSet = planned ? planned.facts : await gather(0);
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as Task;
    const tStart = clock();
    let plan: TaskPlan;
    try {
      plan = task.plan(factSet, ctx.facts);
    } catch (e) {
      const msg = mask((e as Error).message);
      reporter.emit({ type: 'task', step: step.name, host, task: task.name, status: 'failed', changes: [], seconds: round(clock() - tStart), error: msg });
      return fail(task.name, '(plan)', null, msg);
    }
    const diff = redact.showDiff(plan);
    if (!check) {
      for (const op of plan.ops) {
        const err = await runOp(conn, op);
        if (err) {
          const command = op.kind === 'exec' ? mask(op.cmd.toString()) : describeOp(op);
          reporter.emit({
            type: 'task', step: step.name, host, task: task.name, status: 'failed', changes: plan.changes.map((c) => mask(c)),
            ...(diff ? { diff } : {}), seconds: round(clock() - tStart), error: `exit ${err.code ?? 'none'}: ${mask(tail(err.stderr, 5))}`,
          });
          return fail(task.name, command, err.code, err.stderr);
        }
      }
    }
    reporter.emit({
      type: 'task', step: step.name, host, task: task.name, status: plan.changed ? 'changed' : 'ok',
      changes: plan.changes.map((c) => mask(c)), ...(diff ? { diff } : {}), seconds: round(clock() - tStart),
    });
    if (plan.changed) {
      result.changed += 1;
      for (const h of plan.notify) if (!notified.has(h.id)) notified.set(h.id, h);
      // What this task changed may change what later tasks see: read their facts again.
      if (!check && i + 1 < tasks.length) factSet = await gather(i + 1);
    } else {
      result.ok += 1;
    }
  }
  for (const handler of notified.values()) {
    if (!check) {
      for (const op of handler.ops) {
        const err = await runOp(conn, op);
        if (err) {
          reporter.emit({ type: 'handler', step: step.name, host, handler: handler.name, status: 'failed', error: mask(tail(err.stderr, 5)) });
          return fail(`handler: ${handler.name}`, op.kind === 'exec' ? mask(op.cmd.toString()) : describeOp(op), err.code, err.stderr);
        }
      }
    }
    reporter.emit({ type: 'handler', step: step.name, host, handler: handler.name, status: 'changed' });
    result.changed += 1;
  }
  elapsed();
}

/** Executes one op; returns the failure (exit code + stderr) or undefined. A lost connection is a failure with code null. */
async function runOp(conn: Connection, op: Op): Promise<{ code: number | null; stderr: string } | undefined> {
  try {
    if (op.kind === 'put') {
      await conn.put(op.path, op.content, { mode: op.mode, owner: op.owner, group: op.group });
      return undefined;
    }
    const res = await conn.exec(op.cmd, op.timeoutSec === undefined ? {} : { timeoutSec: op.timeoutSec });
    if (res.code === 0) return undefined;
    return { code: res.code, stderr: res.stderr || res.stdout };
  } catch (e) {
    return { code: null, stderr: (e as Error).message };
  }
}

/** Waits for a step's gate on the hosts it checks (`targets`); returns the failure or undefined. One remote loop per checked host. */
async function runGate(
  step: Step,
  targets: Host[],
  conns: Map<string, Connection>,
  facts: Map<string, HostFacts>,
  opts: RunOptions,
  reporter: Reporter,
  mask: (s: string) => string,
  clock: () => number,
): Promise<TaskFailedError | undefined> {
  const gate = step.gate;
  if (!gate) return undefined;
  const results = await Promise.all(
    targets.map(async (h) => {
      const ctx = playContext(opts, facts, h);
      const start = clock();
      const check: Cmd = gate.check(ctx);
      reporter.emit({ type: 'gate', step: step.name, gate: gate.name, host: h.name, status: 'waiting', seconds: 0 });
      const loop = waitLoop({ cmd: check, timeoutSec: gate.timeoutSec, intervalSec: gate.intervalSec ?? 1 });
      let res;
      try {
        res = await (conns.get(h.name) as Connection).exec(loop, { timeoutSec: gate.timeoutSec + 15 });
      } catch (e) {
        res = { code: null, stdout: '', stderr: (e as Error).message };
      }
      const seconds = round(clock() - start);
      if (res.code === 0) {
        reporter.emit({ type: 'gate', step: step.name, gate: gate.name, host: h.name, status: 'ok', seconds });
        return undefined;
      }
      const stderr = mask(tail(res.stderr || res.stdout));
      reporter.emit({ type: 'gate', step: step.name, gate: gate.name, host: h.name, status: 'failed', seconds, error: stderr });
      return new TaskFailedError(h.name, step.name, `gate: ${gate.name}`, mask(check.toString()), res.code, stderr);
    }),
  );
  return results.find((r) => r !== undefined);
}

/**
 * The roles of `host` that `steps` (the steps that target it) set up: the roles a step selects by,
 * or every role of the host for a step that names it (add-worker's steps for the new host). A step
 * for every host (the base system) sets up no role.
 */
export function runRoles(steps: readonly Step[], host: Host): Role[] {
  const roles = new Set<Role>();
  for (const s of steps) {
    const named = s.hosts.names?.includes(host.name) ?? false;
    for (const r of host.roles) if (named || (s.hosts.roles ?? []).includes(r)) roles.add(r);
  }
  return host.roles.filter((r) => roles.has(r));
}

function round(s: number): number {
  return Math.round(s * 1000) / 1000;
}
