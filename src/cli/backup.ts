/**
 * `airflow-ha backup`, `backup list` and `restore` (src/backup/): a pgBackRest backup now, the
 * repository's backups, and the guarded point-in-time restore. README "Backups".
 */
import { ExitCode, InputError } from '../core/errors.js';
import type { LoadedInventory } from '../inventory/load.js';
import { BACKUP_TYPES, backupHost, type BackupType } from '../components/backup.js';
import { renderBackupList } from '../backup/info.js';
import { parseTarget } from '../backup/restore.js';
import { operator, type Io } from './run.js';

/** SSH flags every command that connects takes. */
export interface BackupSshFlags {
  acceptNewHostKeys?: boolean;
  sshConfig?: string;
  knownHosts?: string;
}

/** `--type`, checked. @throws InputError naming the known types. */
export function parseBackupType(text: string | undefined): BackupType {
  const t = text ?? 'full';
  if (!(BACKUP_TYPES as readonly string[]).includes(t)) throw new InputError(`backup: --type must be one of ${BACKUP_TYPES.join(', ')}, got "${t}"`);
  return t as BackupType;
}

async function context(io: Io, loaded: LoadedInventory, o: BackupSshFlags) {
  if (!backupHost(loaded.inventory)) throw new InputError(`${loaded.file}: no host has the role backup, so there is no pgBackRest repository (README "Backups")`);
  const [{ secretsIfReadable }, { buildTransport }, run] = await Promise.all([import('./secrets.js'), import('./transport.js'), import('../backup/run.js')]);
  const secrets = await secretsIfReadable(loaded, io, 'hosts\' output is not masked');
  const transport = await buildTransport(loaded, io, o, { retries: 0, keepaliveIntervalSec: 5 });
  const ctx = { inventory: loaded.inventory, ...(secrets ? { secrets } : {}), transport, say: (l: string) => io.err(`${l}\n`) };
  return { ctx, transport, run };
}

/** `backup [--type T]`: exit 0 with the new backup's label, 1 when pgBackRest failed. */
export async function backupNowCommand(io: Io, loaded: LoadedInventory, o: BackupSshFlags & { type?: string; json?: boolean }): Promise<number> {
  const type = parseBackupType(o.type);
  const { ctx, transport, run } = await context(io, loaded, o);
  try {
    const label = await run.takeBackup(ctx, type);
    io.out(o.json ? `${JSON.stringify({ type: 'backup', backupType: type, label })}\n` : `${type} backup ${label} taken\n`);
    return ExitCode.ok;
  } catch (e) {
    if (!(e instanceof run.BackupStepError)) throw e;
    io.err(`backup: ${e.message}\n`);
    return ExitCode.taskFailed;
  } finally {
    await transport.close();
  }
}

/** `backup list`: the table (or `--json`: the parsed stanza), exit 0; 1 when info failed. */
export async function backupListCommand(io: Io, loaded: LoadedInventory, o: BackupSshFlags & { json?: boolean }): Promise<number> {
  const { ctx, transport, run } = await context(io, loaded, o);
  try {
    const info = await run.readInfo(ctx);
    io.out(o.json ? `${JSON.stringify(info)}\n` : `${renderBackupList(info, Math.floor(Date.now() / 1000))}\n`);
    return ExitCode.ok;
  } catch (e) {
    if (!(e instanceof run.BackupStepError)) throw e;
    io.err(`backup list: ${e.message}\n`);
    return ExitCode.taskFailed;
  } finally {
    await transport.close();
  }
}

/**
 * `restore [--to T] [--yes]`: reads the cluster, prints the plan; without `--yes` stops there (exit
 * 2, nothing changed); with it runs the plan under the run lock (0 done, 1 a step failed, 4 lock held).
 */
export async function restoreCommand(io: Io, loaded: LoadedInventory, o: BackupSshFlags & { to?: string; yes?: boolean }, command: string): Promise<number> {
  let target: string | undefined;
  try {
    target = o.to === undefined ? undefined : parseTarget(o.to, Date.now());
  } catch (e) {
    throw new InputError(`restore: ${(e as Error).message}`);
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const { ctx, transport, run } = await context(io, loaded, o);
  try {
    let planned;
    try {
      planned = await run.planRestore(ctx, target, stamp);
    } catch (e) {
      if (!(e instanceof run.BackupStepError)) throw e;
      io.err(`restore: ${e.message}; nothing was done\n`);
      return ExitCode.badInput;
    }
    const list = planned.steps.map((s, i) => `  ${String(i + 1).padStart(2)}. ${s.host}: ${s.name}`).join('\n');
    const what = `restore of cluster ${loaded.inventory.cluster.name} ${target ? `to ${target}` : 'to the end of the WAL archive'} (leader-to-be ${planned.inputs.leader}; every write after that point is lost, the old data directories are kept beside the new ones)`;
    if (!o.yes) {
      io.err(`restore: refusing without --yes. This ${what} would run:\n${list}\nNothing was done.\n`);
      return ExitCode.badInput;
    }
    io.err(`restore: ${what}:\n${list}\n`);
    const result = await run.runRestore(ctx, planned.steps, { holder: operator(io), command });
    if (result.error) io.err(`restore: ${result.error}\n`);
    else io.out(`restored ${loaded.inventory.cluster.name} ${target ? `to ${target}` : 'to the end of the archive'}: leader ${planned.inputs.leader}, ${planned.steps.length} steps\n`);
    return result.exitCode;
  } finally {
    await transport.close();
  }
}
