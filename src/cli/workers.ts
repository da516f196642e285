/**
 * `airflow-ha add-worker` and `airflow-ha remove-worker`: edit the inventory file (keeping its
 * comments and layout; written to a temp file, then renamed) and run the steps the change needs.
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../core/errors.js';
import { addHostToInventory } from '../inventory/edit.js';
import { loadInventory, parseInventory } from '../inventory/load.js';
import { addWorkerPlaybook } from '../../playbooks/add-worker.js';
import { playbooks } from '../../playbooks/index.js';
import { operatorInputs } from './operator.js';
import { runPlaybookCli, type Io } from './run.js';

/** Writes `text` to `file` atomically (temp file in the same folder, then rename), keeping its mode. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const mode = (await stat(file)).mode & 0o777;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.airflow-ha-${process.pid}.tmp`);
  await writeFile(tmp, text, { mode });
  await rename(tmp, file);
}

const queueList = (v: string) => v.split(',').map((q) => q.trim()).filter(Boolean);

/** The steps that set up a worker host: the Airflow playbook's, limited to the new host by add-worker. */
function workerSteps() {
  return playbooks['airflow']?.steps ?? [];
}

/**
 * Registers `add-worker` and `remove-worker` on `program`; `setExit` receives each run's exit code.
 */
export function registerWorkerCommands(program: Command, io: Io, argv: readonly string[], setExit: (code: number) => void): void {
  program
    .command('add-worker')
    .description('add a Celery worker host: write it into the inventory, teach the other hosts its name and address, set it up')
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .argument('<name>', 'host name of the new worker (a DNS label)')
    .requiredOption('--address <ipv4>', 'its address inside cluster.network')
    .option('--queues <q1,q2>', 'Celery queues it consumes (default: default)', 'default')
    .option('--check', 'show what would change (inventory and hosts), change nothing')
    .option('--json', 'one JSON event per line on stdout')
    .option('--diff', 'show diffs of changed files')
    .option('-v, --verbose', 'also list tasks that were already in the desired state')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .action(async (name: string, o: { inventory: string; address: string; queues: string; check?: boolean; json?: boolean; diff?: boolean; verbose?: boolean; acceptNewHostKeys?: boolean }) => {
      const file = path.resolve(io.cwd, o.inventory);
      const text = await readFile(file, 'utf8').catch((e: Error) => {
        throw new InputError(`cannot read inventory ${file}: ${e.message}`);
      });
      const edit = addHostToInventory(text, file, { name, address: o.address, roles: ['worker'], queues: queueList(o.queues) });
      const say = (t: string) => (o.json ? io.err(t) : io.out(t));
      if (!edit.changed) say(`inventory: ${name} is already there\n`);
      else if (o.check) say(`inventory: would add ${name} (${o.address}, queues ${queueList(o.queues).join(',')}) to ${file}\n`);
      else {
        await writeAtomically(file, edit.text);
        say(`inventory: added ${name} (${o.address}) to ${file}\n`);
      }
      const loaded = o.check && edit.changed ? { ...(await loadInventory(file)), inventory: parseInventory(edit.text, file).inventory } : await loadInventory(file);
      const pb = addWorkerPlaybook(loaded.inventory, name, workerSteps());
      setExit(
        await runPlaybookCli(io, loaded, pb, {
          check: Boolean(o.check),
          limit: { all: true },
          json: o.json,
          diff: o.diff,
          verbose: o.verbose,
          acceptNewHostKeys: o.acceptNewHostKeys,
          inputs: await operatorInputs(loaded, io.cwd),
          command: ['airflow-ha', ...argv.slice(2)].join(' '),
        }),
      );
    });
}

