/**
 * `airflow-ha upgrade -i FILE --to VERSION [--check] [--yes]` and `upgrade -i FILE --rollback`:
 * checks the jump (src/components/airflow-upgrade.ts), prints the plan (and, 2.x to 3.x, what the
 * DAG files use that Airflow 3.0 removed), runs playbooks/upgrade.ts, then writes the new version
 * into the inventory in place (comments kept; temp file + rename) and records the jump in
 * `<state>/upgrade.json` for `--rollback`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { ExitCode, InputError } from '../core/errors.js';
import { inventoryOption, withExamples } from './options.js';
import type { Io } from './run.js';
import type { SshFlags } from './transport.js';

/** `<state>/upgrade.json`: the last jump, `previous` -> `current`; `rolledBack` once `--rollback` returned to `previous`. */
export interface UpgradeRecord {
  previous: string;
  current: string;
  at: string;
  rolledBack?: boolean;
}

/** Where the record lives in an inventory's state folder. */
export const upgradeRecordPath = (stateDir: string) => path.join(stateDir, 'upgrade.json');

type Flags = { inventory: string; to?: string; rollback?: boolean; check?: boolean; yes?: boolean; dags?: string; drainTimeout: string; json?: boolean; diff?: boolean; verbose?: boolean } & SshFlags;

/** Registers `upgrade` on `program`; `setExit` receives the exit code. */
export function registerUpgradeCommand(program: Command, io: Io, argv: readonly string[], setExit: (code: number) => void): void {
  withExamples(
    program.command('upgrade'),
    'airflow-ha upgrade -i site.yaml --to 3.4.0 --check    # the plan, and the DAG files that use APIs Airflow 3 removed',
    'airflow-ha upgrade -i site.yaml --to 3.4.0 --yes    # later: upgrade -i site.yaml --rollback --yes',
  )
    .description('rolling upgrade of the Airflow services: new virtualenv beside the old, schedulers paused, workers drained, db migrate once, UI servers one at a time behind HAProxy, workers pool by pool; --rollback goes back')
    .addOption(inventoryOption(io.env))
    .option('--to <version>', 'the Airflow version to upgrade to (MAJOR.MINOR.PATCH)')
    .option('--rollback', 'back to the version the last upgrade started from (its virtualenv is kept until the next upgrade)')
    .option('--check', 'print the plan (and the DAG files using APIs removed in Airflow 3), change nothing, connect nowhere')
    .option('--yes', 'run it (an upgrade restarts every Airflow service)')
    .option('--dags <dir>', 'the DAG folder to scan with --check (default: cluster.dags.source of dags.mode sync)')
    .option('--drain-timeout <seconds>', 'how long running tasks may take to finish on a worker', '600')
    .option('--json', 'one JSON event per line on stdout')
    .option('--diff', 'show diffs of changed files')
    .option('-v, --verbose', 'also list tasks that were already in the desired state')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .action(async (o: Flags) => setExit(await upgradeAction(io, argv, o)));
}

async function upgradeAction(io: Io, argv: readonly string[], o: Flags): Promise<number> {
  const [{ parseInventory }, { setAirflowVersion }, up, pb, { writeFileAtomic }, { runPlaybookCli }, { operatorInputs, dagSource, readTree }, { dagsMode }] = await Promise.all([
    import('../inventory/load.js'),
    import('../inventory/edit.js'),
    import('../components/airflow-upgrade.js'),
    import('../../playbooks/upgrade.js'),
    import('./files.js'),
    import('./run.js'),
    import('./operator.js'),
    import('../inventory/rules.js'),
  ]);
  if (Boolean(o.to) === Boolean(o.rollback)) throw new InputError('upgrade: give exactly one of --to VERSION and --rollback');
  const timeout = Number(o.drainTimeout);
  if (!Number.isInteger(timeout) || timeout < 0) throw new InputError(`--drain-timeout: a whole number of seconds, not "${o.drainTimeout}"`);
  const file = path.resolve(io.cwd, o.inventory);
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new InputError(`cannot read inventory ${file}: ${e.message}`);
  });
  const loaded = parseInventory(text, file);
  const running = loaded.inventory.cluster.versions.airflow;
  const say = (t: string) => (o.json ? io.err(t) : io.out(t));
  const recordFile = upgradeRecordPath(loaded.stateDir);
  const record = await readFile(recordFile, 'utf8').then((t) => JSON.parse(t) as UpgradeRecord, (e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new InputError(`cannot read ${recordFile}: ${e.message}`);
  });
  const command = ['airflow-ha', ...argv.slice(2)].join(' ');
  const flags = { json: o.json, diff: o.diff, verbose: o.verbose, acceptNewHostKeys: o.acceptNewHostKeys, sshConfig: o.sshConfig, knownHosts: o.knownHosts, command };

  // The target and the kind of jump.
  let target: string;
  let kind: 'none' | 'minor' | 'major';
  let notes: string[] = [];
  if (o.rollback) {
    if (!record) throw new InputError(`upgrade --rollback: no upgrade recorded in ${recordFile} (nothing to roll back to)`);
    if (running === record.previous) {
      target = running;
      kind = 'none';
    } else if (running === record.current) {
      const p = up.checkRollbackPath(record.current, record.previous);
      target = p.to;
      kind = p.kind;
    } else {
      throw new InputError(`upgrade --rollback: ${file} names Airflow ${running}, but the last upgrade went ${record.previous} -> ${record.current}`);
    }
  } else {
    const p = up.checkUpgradePath(running, o.to!);
    target = p.to;
    kind = p.kind;
    notes = p.notes;
  }
  if (kind === 'none' && o.check) {
    say(`upgrade: ${file} already names Airflow ${running}: nothing to upgrade (without --check, a run makes sure every Airflow host runs it)\ncheck: nothing changed\n`);
    return ExitCode.ok;
  }
  if (kind === 'none') {
    say(`upgrade: ${file} already names Airflow ${running}; making sure every Airflow host runs it\n`);
    return runPlaybookCli(io, loaded, pb.convergePlaybook(running), { ...flags, check: false, limit: { all: true }, inputs: await operatorInputs(loaded, io.cwd) });
  }
  // The inventory as it will be written (validated: rule airflow:version refuses an unsupported target).
  const edit = setAirflowVersion(text, file, target);
  const to = edit.loaded.inventory;
  const playbook = pb.upgradePlaybook(loaded.inventory, to, o.rollback ? 'rollback' : 'upgrade', timeout);
  say(`${o.rollback ? 'rollback' : 'upgrade'}: Airflow ${running} -> ${target} (${kind === 'major' ? 'a new major' : 'same major'})\n`);
  for (const n of notes) say(`  note: ${n}\n`);
  for (const l of pb.describeSteps(playbook, to)) say(`  ${l}\n`);
  say(`  then: cluster.versions.airflow = ${target} in ${file} (comments kept)\n`);
  if (o.check) {
    if (kind === 'major' && !o.rollback) {
      const dir = o.dags ? path.resolve(io.cwd, o.dags) : dagsMode(loaded.inventory) === 'sync' ? dagSource(loaded, io.cwd) : undefined;
      if (dir === undefined) say('DAG files: not scanned (dags.mode nfs: the files live on the export; pass --dags DIR with a copy of them)\n');
      else {
        const findings = up.scanDags(readTree(dir));
        say(`DAG files in ${dir}: ${findings.filter((f) => f.severity === 'removed').length} use(s) of APIs removed in Airflow 3.0, ${findings.filter((f) => f.severity === 'moved').length} of APIs moved to providers\n`);
        for (const l of up.formatFindings(findings)) say(`  ${l}\n`);
      }
    }
    say('check: nothing changed\n');
    return ExitCode.ok;
  }
  if (!o.yes) throw new InputError(`upgrade restarts every Airflow service: run it again with --yes (see the plan above; --check also scans the DAG files)`);
  const code = await runPlaybookCli(io, loaded, playbook, { ...flags, check: false, limit: { all: true }, inputs: await operatorInputs(loaded, io.cwd) }, to);
  if (code !== ExitCode.ok) {
    say(`${o.rollback ? 'rollback' : 'upgrade'}: not finished; ${file} still names ${running}. Run the same command again to finish it\n`);
    return code;
  }
  // Read again: an edit made during the run is kept.
  const done = setAirflowVersion(await readFile(file, 'utf8'), file, target);
  await writeFileAtomic(file, done.text);
  const next: UpgradeRecord = o.rollback ? { ...record!, at: new Date().toISOString(), rolledBack: true } : { previous: running, current: target, at: new Date().toISOString() };
  await writeFileAtomic(recordFile, `${JSON.stringify(next, null, 2)}\n`, 0o600);
  say(`inventory: cluster.versions.airflow = ${target} in ${file}\n`);
  return code;
}
