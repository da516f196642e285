/**
 * `airflow-ha add-worker` and `airflow-ha remove-worker`: edit the inventory file (keeping its
 * comments and layout; written to a temp file, then renamed) and run the steps the change needs.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { ExitCode, InputError } from '../core/errors.js';
import type { Step } from '../run/playbook.js';
import { inventoryOption, withExamples } from './options.js';
import type { Io } from './run.js';
import type { SshFlags } from './transport.js';

const queueList = (v: string) => v.split(',').map((q) => q.trim()).filter(Boolean);

/**
 * The steps that set up a worker host: every bootstrap step but the ones every host runs anyway
 * (add-worker limits them to the new host, so the data-plane steps select nothing there).
 */
async function workerSteps(): Promise<Step[]> {
  const [{ bootstrap }, { learnSteps }] = await Promise.all([import('../../playbooks/bootstrap.js'), import('../../playbooks/add-worker.js')]);
  return bootstrap.steps.filter((s) => !learnSteps.includes(s));
}

/** What both commands use, loaded when one of them runs (not on every start of the CLI). */
async function workerModules() {
  const [fs, edit, load, add, files, operator, run] = await Promise.all([
    import('node:fs/promises'),
    import('../inventory/edit.js'),
    import('../inventory/load.js'),
    import('../../playbooks/add-worker.js'),
    import('./files.js'),
    import('./operator.js'),
    import('./run.js'),
  ]);
  return { ...fs, ...edit, ...load, ...add, ...files, ...operator, ...run };
}

/**
 * Registers `add-worker` and `remove-worker` on `program`; `setExit` receives each run's exit code.
 */
export function registerWorkerCommands(program: Command, io: Io, argv: readonly string[], setExit: (code: number) => void): void {
  withExamples(
    program.command('add-worker'),
    'airflow-ha add-worker -i inventory/lab.yaml worker3 --address 10.222.83.160 --check    # what would change',
    'airflow-ha add-worker -i inventory/lab.yaml worker3 --address 10.222.83.160 --queues default,etl --accept-new-host-keys',
  )
    .description('add a Celery worker host: write it into the inventory, teach the other hosts its name and address, set it up')
    .addOption(inventoryOption(io.env))
    .argument('<name>', 'host name of the new worker (a DNS label)')
    .requiredOption('--address <ipv4>', 'its address inside cluster.network')
    .option('--queues <q1,q2>', 'Celery queues it consumes', 'default')
    .option('--check', 'show what would change (inventory and hosts), change nothing')
    .option('--json', 'one JSON event per line on stdout')
    .option('--diff', 'show diffs of changed files')
    .option('-v, --verbose', 'also list tasks that were already in the desired state')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .action(async (name: string, o: { inventory: string; address: string; queues: string; check?: boolean; json?: boolean; diff?: boolean; verbose?: boolean } & SshFlags) => {
      const { readFile, addHostToInventory, writeFileAtomic, addWorkerPlaybook, runPlaybookCli, runFlags, operatorInputs } = await workerModules();
      const file = path.resolve(io.cwd, o.inventory);
      const text = await readFile(file, 'utf8').catch((e: Error) => {
        throw new InputError(`cannot read inventory ${file}: ${e.message}`);
      });
      const edit = addHostToInventory(text, file, { name, address: o.address, roles: ['worker'], queues: queueList(o.queues) });
      const say = (t: string) => (o.json ? io.err(t) : io.out(t));
      if (!edit.changed) say(`inventory: ${name} is already there\n`);
      else if (o.check) say(`inventory: would add ${name} (${o.address}, queues ${queueList(o.queues).join(',')}) to ${file}\n`);
      else {
        await writeFileAtomic(file, edit.text);
        say(`inventory: added ${name} (${o.address}) to ${file}\n`);
      }
      // The inventory as written (in check mode: as it would be).
      const loaded = edit.loaded;
      const pb = addWorkerPlaybook(loaded.inventory, name, await workerSteps());
      setExit(
        await runPlaybookCli(io, loaded, pb, {
          check: Boolean(o.check),
          limit: { all: true },
          ...runFlags(o),
          inputs: await operatorInputs(loaded, io.cwd),
          preflight: true,
          command: ['airflow-ha', ...argv.slice(2)].join(' '),
        }),
      );
    });

  withExamples(
    program.command('remove-worker'),
    'airflow-ha remove-worker -i inventory/lab.yaml worker3',
    'airflow-ha remove-worker -i inventory/lab.yaml worker3 --drain-timeout 1800',
  )
    .description('remove a Celery worker host: drain it, stop its services, take it out of the inventory and of the other hosts')
    .addOption(inventoryOption(io.env))
    .argument('<name>', 'host name of the worker')
    .option('--drain-timeout <seconds>', 'how long running tasks may take to finish', '600')
    .option('--json', 'one JSON event per line on stdout')
    .option('--diff', 'show diffs of changed files')
    .option('-v, --verbose', 'also list tasks that were already in the desired state')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .action(async (name: string, o: { inventory: string; drainTimeout: string; json?: boolean; diff?: boolean; verbose?: boolean } & SshFlags) => {
      const file = path.resolve(io.cwd, o.inventory);
      const timeout = Number(o.drainTimeout);
      if (!Number.isInteger(timeout) || timeout < 0) throw new InputError(`--drain-timeout: a whole number of seconds, not "${o.drainTimeout}"`);
      const { readFile, removeHostFromInventory, loadInventory, writeFileAtomic, drainWorkerPlaybook, forgetWorkerPlaybook, runPlaybookCli } = await workerModules();
      const say = (t: string) => (o.json ? io.err(t) : io.out(t));
      const command = ['airflow-ha', ...argv.slice(2)].join(' ');
      const flags = { json: o.json, diff: o.diff, verbose: o.verbose, acceptNewHostKeys: o.acceptNewHostKeys, sshConfig: o.sshConfig, knownHosts: o.knownHosts, command };
      const loaded = await loadInventory(file);
      let after = loaded;
      const host = loaded.inventory.hosts.find((h) => h.name === name);
      if (host) {
        if (host.roles.some((r) => r !== 'worker')) {
          throw new InputError(`${file}: remove-worker removes hosts whose only role is worker; ${name} has roles ${host.roles.join(', ')}`);
        }
        // 1. Drain and stop it while it is still in the inventory (nothing else is touched).
        const drained = await runPlaybookCli(io, loaded, drainWorkerPlaybook(name, timeout), { ...flags, check: false, limit: { names: [name] } });
        if (drained !== ExitCode.ok) {
          say(`inventory: ${name} kept (its drain or stop did not finish; nothing else changed)\n`);
          setExit(drained);
          return;
        }
        // 2. Out of the inventory file (every other byte kept), written atomically. Read again: the
        // drain may have taken minutes, and an edit made meanwhile is kept.
        const edit = removeHostFromInventory(await readFile(file, 'utf8'), file, name);
        await writeFileAtomic(file, edit.text);
        say(`inventory: removed ${name} from ${file}\n`);
        after = edit.loaded;
      } else {
        say(`inventory: ${name} is not there (already removed); making sure no host still knows it\n`);
      }
      // 3. The other hosts forget it (/etc/hosts, pg_hba).
      setExit(await runPlaybookCli(io, after, forgetWorkerPlaybook(name), { ...flags, check: false, limit: { all: true } }));
    });
}
