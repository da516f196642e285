/**
 * Runs the backup commands against the cluster: a backup now, the repository's list, and the
 * guarded restore (its plan from ./restore.ts). Reads what the plan needs from the live cluster
 * first, changes nothing before the plan is complete, and takes the run lock for the restore.
 */
import { sh } from '../core/cmd.js';
import { ExitCode } from '../core/errors.js';
import { maskSecrets } from '../core/secret.js';
import { allSecrets, type ClusterSecrets } from '../inventory/secrets.js';
import type { Inventory } from '../inventory/schema.js';
import { airflowHosts, airflowServices } from '../components/airflow.js';
import { backupCommand, backupHost, backupStanza, infoCommand, type BackupType } from '../components/backup.js';
import { patroniNodes } from '../components/patroni.js';
import type { OsFamily } from '../facts/host.js';
import { waitCheck } from '../tasks/command.js';
import { acquireLockCmd, describeHolder, LOCK_HELD_EXIT, releaseLockCmd, type LockHolder } from '../run/lock.js';
import type { Transport } from '../ssh/transport.js';
import { parseInfo, type StanzaInfo } from './info.js';
import { restorePlan, type RestoreInputs, type RestoreStep } from './restore.js';

/** What the backup commands need from their caller (the CLI, or a test). */
export interface BackupContext {
  inventory: Inventory;
  /** Masks what the hosts print (absent: nothing to mask). */
  secrets?: ClusterSecrets;
  transport: Transport;
  /** One line of progress for people (stderr in the CLI). */
  say(line: string): void;
  now?: () => number;
}

/** A command that failed on a host, with its masked stderr tail. */
export class BackupStepError extends Error {}

function repoName(inv: Inventory): string {
  const repo = backupHost(inv);
  if (!repo) throw new BackupStepError('no host has the role backup: add one to the inventory and run bootstrap');
  return repo.name;
}

function tail(ctx: BackupContext, text: string, lines = 6): string {
  return maskSecrets(text.trim().split('\n').slice(-lines).join('\n'), ctx.secrets ? allSecrets(ctx.secrets) : []);
}

/** `pgbackrest info` of the stanza, read on the backup host. @throws BackupStepError when it fails. */
export async function readInfo(ctx: BackupContext): Promise<StanzaInfo> {
  const host = repoName(ctx.inventory);
  const conn = await ctx.transport.connect(host);
  const r = await conn.exec(infoCommand(ctx.inventory), { timeoutSec: 60 });
  if (r.code !== 0) throw new BackupStepError(`pgbackrest info on ${host}: exit ${r.code}: ${tail(ctx, r.stderr || r.stdout)}`);
  return parseInfo(r.stdout, backupStanza(ctx.inventory));
}

/** Takes a backup of `type` now on the backup host; returns the new backup's label. @throws BackupStepError. */
export async function takeBackup(ctx: BackupContext, type: BackupType): Promise<string> {
  const host = repoName(ctx.inventory);
  const before = new Set((await readInfo(ctx)).backups.map((b) => b.label));
  const conn = await ctx.transport.connect(host);
  const cmd = backupCommand(ctx.inventory, type);
  ctx.say(`${host}: ${cmd.toString()}`);
  const r = await conn.exec(cmd, { timeoutSec: 24 * 3600 });
  if (r.code !== 0) throw new BackupStepError(`${type} backup on ${host}: exit ${r.code}: ${tail(ctx, r.stderr || r.stdout)}`);
  const made = (await readInfo(ctx)).backups.find((b) => !before.has(b.label));
  if (!made) throw new BackupStepError(`${type} backup on ${host} ended with exit 0 but pgbackrest info lists no new backup`);
  return made.label;
}

/** Which node leads now (Patroni `GET /leader` = 200), by asking each node about itself. */
async function currentLeader(ctx: BackupContext): Promise<string | undefined> {
  const inv = ctx.inventory;
  for (const h of patroniNodes(inv)) {
    try {
      const conn = await ctx.transport.connect(h.name);
      const r = await conn.exec(waitCheck({ http: `http://${h.address}:${inv.cluster.ports.patroniApi}/leader`, timeoutSec: 2 }), { timeoutSec: 10 });
      if (r.code === 0) return h.name;
    } catch {
      // An unreachable node is not the leader; the plan's steps on it will say so.
    }
  }
  return undefined;
}

/** The Airflow units active on each Airflow host now. */
async function activeAirflowUnits(ctx: BackupContext): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const h of airflowHosts(ctx.inventory)) {
    const units = airflowServices(ctx.inventory, h).map((s) => s.unit);
    if (units.length === 0) continue;
    const conn = await ctx.transport.connect(h.name);
    const r = await conn.exec(sh`for u in ${units}; do if systemctl -q is-active "$u"; then echo "$u"; fi; done`, { timeoutSec: 20 });
    out.set(h.name, r.stdout.split('\n').map((l) => l.trim()).filter(Boolean));
  }
  return out;
}

/** The host facts a restore plan needs: the OS family of the first PostgreSQL host (all share one layout). */
async function pgFamily(ctx: BackupContext): Promise<OsFamily> {
  const first = patroniNodes(ctx.inventory)[0];
  if (!first) throw new BackupStepError('no host has the role postgresql');
  const conn = await ctx.transport.connect(first.name);
  const r = await conn.exec(sh`. /etc/os-release && printf '%s %s\\n' "$ID" "$ID_LIKE"`, { timeoutSec: 10 });
  return /\b(rhel|fedora|centos|rocky|almalinux)\b/.test(r.stdout) ? 'rhel' : 'debian';
}

/**
 * Reads the live cluster and builds the restore plan: who leads (else the first PostgreSQL host),
 * which Airflow units run, and checks that a backup exists that the target can start from.
 * Changes nothing. @throws BackupStepError when there is nothing to restore from.
 */
export async function planRestore(ctx: BackupContext, target: string | undefined, stamp: string): Promise<{ inputs: RestoreInputs; steps: RestoreStep[]; info: StanzaInfo }> {
  const inv = ctx.inventory;
  const info = await readInfo(ctx);
  const good = info.backups.filter((b) => !b.error);
  if (good.length === 0) throw new BackupStepError(`stanza ${info.name} has no good backup to restore from (${info.statusMessage}); take one with \`airflow-ha backup\``);
  if (target) {
    const targetSec = Date.parse(target.replace(' ', 'T').replace(/\+00$/, 'Z')) / 1000;
    const first = good.map((b) => b.stopSec).sort((a, b) => a - b)[0] as number;
    if (targetSec < first) throw new BackupStepError(`--to ${target} lies before the end of the oldest good backup (${new Date(first * 1000).toISOString()}): no backup can be replayed to it`);
  }
  const leader = await currentLeader(ctx);
  const inputs: RestoreInputs = {
    leader: leader ?? (patroniNodes(inv)[0]?.name as string),
    primaryRunning: leader !== undefined,
    ...(target ? { target } : {}),
    stamp,
    airflowUnits: await activeAirflowUnits(ctx),
    family: await pgFamily(ctx),
  };
  return { inputs, steps: restorePlan(inv, inputs), info };
}

/** The outcome of a restore. */
export interface RestoreResult {
  exitCode: number;
  /** The steps that ran to their end. */
  done: number;
  error?: string;
}

/**
 * Runs the restore plan under the run lock, one step after the other; the first failure stops it
 * (exit 1) and names the step, its host and its stderr tail: the steps before it are done, the ones
 * after are not (the old data directories are kept, see ./restore.ts). Exit 4 when the lock is held.
 */
export async function runRestore(ctx: BackupContext, steps: readonly RestoreStep[], lock: Omit<LockHolder, 'time' | 'pid'>): Promise<RestoreResult> {
  const now = ctx.now ?? Date.now;
  const lockHost = ctx.inventory.hosts[0]?.name as string;
  const lockConn = await ctx.transport.connect(lockHost);
  const holder: LockHolder = { ...lock, time: new Date(now()).toISOString(), pid: process.pid };
  const taken = await lockConn.exec(acquireLockCmd(holder));
  if (taken.code === LOCK_HELD_EXIT) return { exitCode: ExitCode.lockHeld, done: 0, error: `the run lock on ${lockHost} is held by ${describeHolder(taken.stdout)}` };
  if (taken.code !== 0) return { exitCode: ExitCode.taskFailed, done: 0, error: `take the run lock on ${lockHost}: exit ${taken.code}: ${tail(ctx, taken.stderr)}` };
  let done = 0;
  try {
    for (const [i, s] of steps.entries()) {
      const t0 = now();
      ctx.say(`[${i + 1}/${steps.length}] ${s.name}`);
      const conn = await ctx.transport.connect(s.host);
      const r = await conn.exec(s.cmd, { timeoutSec: s.timeoutSec, ...(s.stdin === undefined ? {} : { stdin: s.stdin }) });
      if (r.code !== 0) {
        return {
          exitCode: ExitCode.taskFailed,
          done,
          error: `step ${i + 1}/${steps.length} "${s.name}" failed on ${s.host}: ${r.code === null ? `no end within ${s.timeoutSec} s` : `exit ${r.code}`}\n  command: ${s.cmd.toString()}\n  ${tail(ctx, r.stderr || r.stdout).replace(/\n/g, '\n  ')}`,
        };
      }
      done++;
      ctx.say(`      done in ${((now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await lockConn.exec(releaseLockCmd(holder)).catch(() => undefined);
  }
  return { exitCode: ExitCode.ok, done };
}

