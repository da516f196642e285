/**
 * The command line. The only module that reads argv, the environment and the working directory,
 * builds the real SSH transport, and decides exit codes (see README "Exit codes").
 *
 * Start-up time counts on every run (`--help` and `validate` aim at 0.15 s, see bench/startup.sh):
 * this module loads commander and nothing heavy; each command loads what it uses (the inventory
 * loader with yaml and zod, the playbooks with their templates, ssh2, chalk) inside its action.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { AirflowHaError, ExitCode, formatDiagnostic, InputError } from '../core/errors.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import type { LoadedInventory } from '../inventory/load.js';
import type { OperatorInputs, Playbook } from '../run/playbook.js';
import type { RunSelection } from './resume.js';
import { isPlaybookName, playbookRoles, type PlaybookName } from '../../playbooks/catalog.js';
import { addSshOptions, inventoryOption, withExamples } from './options.js';
import { registerSshCommands } from './ssh.js';
import type { Io } from './run.js';
import type { SshFlags } from './transport.js';
import { registerRotateCommand } from './rotate.js';
import { registerCertsCommand } from './certs.js';
import { registerUpgradeCommand } from './upgrade.js';
import { registerWorkerCommands } from './workers.js';

const DEFAULT_PLAYBOOK = 'bootstrap';

/**
 * Whether output gets ANSI colour: `NO_COLOR` set and non-empty turns it off (https://no-color.org;
 * it wins over FORCE_COLOR); `FORCE_COLOR` turns it on (`0` or `false`: off), read as chalk reads
 * it (https://force-color.org); otherwise colour only on a terminal.
 */
export function colourWanted(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env['NO_COLOR']) return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined) return force !== '0' && force !== 'false';
  return isTTY;
}

function defaultIo(): Io {
  const isTTY = Boolean(process.stdout.isTTY);
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    isTTY,
    colour: colourWanted(process.env, isTTY),
    env: process.env,
    cwd: process.cwd(),
  };
}

/** The version in package.json (read, not built in: one place to bump). */
export function packageVersion(): string {
  // dist/src/cli/main.js -> the repository's package.json (src/cli/main.ts in the source tree).
  const file = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** `name` as a playbook name. @throws InputError naming the known ones. */
function knownPlaybook(name: string): PlaybookName {
  if (!isPlaybookName(name)) throw new InputError(`unknown playbook "${name}" (known: ${Object.keys(playbookRoles).join(', ')})`);
  return name;
}

/** The playbook `name` (loads every playbook, their components and templates). */
async function playbookByName(name: string): Promise<Playbook> {
  const known = knownPlaybook(name);
  const { playbooks } = await import('../../playbooks/index.js');
  return playbooks[known];
}

/** Loads and checks the inventory `file` (relative to io.cwd) for `playbook`; prints its warnings to io.err. */
async function load(io: Io, file: string, playbook?: { name: string; requiredRoles: Playbook['requiredRoles'] }): Promise<LoadedInventory> {
  const { loadInventory } = await import('../inventory/load.js');
  const loaded = await loadInventory(path.resolve(io.cwd, file), playbook ? { requiredRoles: playbook.requiredRoles, playbook: playbook.name } : {});
  for (const w of loaded.warnings) io.err(`${formatDiagnostic(w)}\n`);
  return loaded;
}

/** The lab module (and execa) is loaded only by the `lab` commands. */
const labModule = () => import('../lab/lab.js');

/** Flags shared by the commands that run a playbook. */
interface RunFlags extends SshFlags {
  inventory: string;
  limit?: string;
  json?: boolean;
  diff?: boolean;
  verbose?: boolean;
  /** apply and bootstrap: set up hosts that hold another set of secrets anew with these. */
  newCluster?: boolean;
  /** Print the playbook's steps, connect nowhere. */
  listSteps?: boolean;
  /** Start at this step. */
  fromStep?: string;
  /** Rerun the hosts that failed in the last run of this playbook, from their step. */
  retryFailed?: boolean;
}

/**
 * `--list-steps`, `--from-step NAME`, `--retry-failed` on `cmd` (a command that runs a playbook);
 * see src/cli/resume.ts. Returns `cmd`.
 */
function stepOptions(cmd: Command): Command {
  return cmd
    .option('--list-steps', 'print the steps of the playbook in order (hosts, rolling, gates) and exit; connects nowhere (with --json: one document)')
    .option('--from-step <name>', 'start at this step, skipping the ones before it (their gates too); names: --list-steps')
    .addOption(
      new Option('--retry-failed', 'rerun only the hosts that failed in the last run of this playbook (the journal), from the step they failed at').conflicts('fromStep'),
    );
}

/**
 * The command tree of the CLI, its actions bound to `io`; `argv` (as process.argv) is recorded as
 * the command line of runs. An action reports its exit code through `setExit` (not called: 0).
 * Parsing is left to the caller ({@link main}).
 */
export function buildProgram(io: Io, argv: readonly string[], setExit: (code: number) => void): Command {
  const program = new Command('airflow-ha')
    .description('Stand up and run a highly available Apache Airflow installation on plain VMs over SSH')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();
  withExamples(
    program,
    'airflow-ha validate -i inventory/seed-ha.yaml    # check an inventory offline',
    'airflow-ha bootstrap -i inventory/lab.yaml --accept-new-host-keys',
  );

  const inventoryOpt = () => inventoryOption(io.env);

  /**
   * The steps and hosts a run of `pb` runs (`--limit`, `--from-step`, `--retry-failed`), decided
   * offline; undefined when the command is done (`--list-steps`, nothing to retry).
   */
  const select = async (pb: Playbook, loaded: LoadedInventory, o: RunFlags) => (await import('./resume.js')).selectRun(io, loaded, pb, o);

  /** Runs `pb` (check mode for `plan`) with the real transport, after the preflight unless `preflight` is false; returns the exit code. */
  const run = async (name: 'plan' | 'apply' | 'bootstrap', pb: Playbook, loaded: LoadedInventory, o: RunFlags, sel: RunSelection, inputs: OperatorInputs, preflight = true): Promise<number> => {
    const [{ runPlaybookCli, runFlags }, { resumeCommand }] = await Promise.all([import('./run.js'), import('./resume.js')]);
    return runPlaybookCli(io, loaded, pb, {
      check: name === 'plan',
      limit: sel.limit,
      ...(sel.start ? { start: sel.start } : {}),
      ...(sel.retryOf ? { retryOf: sel.retryOf } : {}),
      resumeCommand: (step) => resumeCommand(argv.slice(2), step),
      ...runFlags(o),
      newCluster: o.newCluster,
      inputs,
      preflight,
      command: ['airflow-ha', ...argv.slice(2)].join(' '),
    });
  };

  withExamples(
    program.command('validate'),
    'airflow-ha validate -i inventory/seed-ha.yaml',
    'airflow-ha validate -i site.yaml --playbook airflow --json    # findings as JSON, errors too',
  )
    .description('check an inventory offline (nothing connects); exit 2 on errors')
    .addOption(inventoryOpt())
    .option('--playbook <name>', 'also require the roles this playbook needs', DEFAULT_PLAYBOOK)
    .option('--json', 'print the findings (errors too) as one JSON document on stdout')
    .action(async (o: { inventory: string; playbook: string; json?: boolean }) => {
      // Only the inventory loader: validate is what an editor or a hook runs on every save.
      const check = (out: Io) => {
        const name = knownPlaybook(o.playbook);
        return load(out, o.inventory, { name, requiredRoles: playbookRoles[name] });
      };
      if (!o.json) {
        const loaded = await check(io);
        const inv = loaded.inventory;
        io.out(`${loaded.file}: OK, ${inv.hosts.length} hosts, ${inv.cluster.vips.length} VIPs, ${loaded.warnings.length} warning(s)\n`);
        return;
      }
      try {
        const loaded = await check({ ...io, err: () => undefined });
        io.out(`${JSON.stringify({ ok: true, file: loaded.file, hosts: loaded.inventory.hosts.length, errors: [], warnings: loaded.warnings })}\n`);
      } catch (e) {
        // Whatever went wrong, one JSON document on stdout: the findings, errors too, or only the
        // message (an unreadable file, an unknown playbook); the exit code is the error's.
        const diagnostics = e instanceof InputError ? e.diagnostics : [];
        const [errors, warnings] = [diagnostics.filter((d) => d.severity === 'error'), diagnostics.filter((d) => d.severity === 'warning')];
        io.out(`${JSON.stringify({ ok: false, file: path.resolve(io.cwd, o.inventory), message: e instanceof Error ? e.message : String(e), errors, warnings })}\n`);
        setExit(e instanceof AirflowHaError ? e.exitCode : ExitCode.taskFailed);
      }
    });

  withExamples(
    program.command('render'),
    'airflow-ha render -i inventory/seed-ha.yaml --out out/seed',
    'airflow-ha render -i inventory/seed-ha.yaml --out out/rhel --os-family rhel --playbook etcd-patroni',
  )
    .description('write every config file each host would get into DIR/<host>/<path> (offline)')
    .addOption(inventoryOpt())
    .requiredOption('--out <dir>', 'output folder')
    .option('--playbook <name>', 'playbook whose files to render', DEFAULT_PLAYBOOK)
    .addOption(new Option('--os-family <family>', 'OS family to assume (hosts are not contacted)').choices(['debian', 'rhel']).default('debian'))
    .action(async (o: { inventory: string; out: string; playbook: string; osFamily: OsFamily }) => {
      const pb = await playbookByName(o.playbook);
      const loaded = await load(io, o.inventory, pb);
      const [{ mkdir }, { placeholderSecrets, readSecrets, secretsFilePath, PLACEHOLDER_PREFIX }, { renderFiles, renderTarget }, { operatorInputs }, { writeFileAtomic }, { secretsSettings }] = await Promise.all([
        import('node:fs/promises'),
        import('../inventory/secrets.js'),
        import('./render.js'),
        import('./operator.js'),
        import('./files.js'),
        import('./secrets.js'),
      ]);
      // render never creates secrets: without the file, placeholders stand in for every value.
      const settings = secretsSettings(loaded, io.env);
      let secrets = await readSecrets(loaded.stateDir, settings);
      if (!secrets) {
        secrets = placeholderSecrets();
        const file = secretsFilePath(loaded.stateDir, settings);
        const what = existsSync(file) ? `the secrets file ${file} lacks secrets` : `no secrets file (${file})`;
        io.err(
          `note: ${what}: rendered with placeholders (${PLACEHOLDER_PREFIX}<name>) instead of secrets; \`airflow-ha bootstrap -i ${o.inventory}\` creates the file on its first run\n`,
        );
      }
      const files = renderFiles(pb, loaded.inventory, secrets, o.osFamily, await operatorInputs(loaded, io.cwd, { env: io.env }));
      const outDir = path.resolve(io.cwd, o.out);
      // Every target is checked before the first write: a refused path leaves DIR untouched.
      const targets = files.map((f) => ({ f, target: renderTarget(outDir, f.host, f.path) }));
      for (const { f, target } of targets) {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFileAtomic(target, f.content, 0o600);
      }
      io.out(`rendered ${files.length} file(s) for ${new Set(files.map((f) => f.host)).size} host(s) into ${outDir}\n`);
    });

  const runCommand = (name: 'plan' | 'apply' | 'bootstrap') => {
    const cmd = withExamples(
      program.command(name),
      ...(name === 'plan'
        ? ['airflow-ha plan -i inventory/lab.yaml', 'airflow-ha plan -i inventory/lab.yaml --playbook haproxy --limit haproxy']
        : name === 'apply'
          ? ['airflow-ha apply -i inventory/lab.yaml --playbook rabbitmq --diff', 'airflow-ha apply -i inventory/lab.yaml --limit airflow,scheduler2 --json']
          : ['airflow-ha bootstrap -i inventory/lab.yaml --accept-new-host-keys    # first run: record the host keys', 'airflow-ha bootstrap -i inventory/lab.yaml    # again: changes nothing']),
    )
      .description(
        name === 'plan'
          ? 'check mode: connect, gather facts, show what would change (with diffs); change nothing'
          : name === 'apply'
            ? 'apply a playbook: change what differs from the desired state'
            : 'bring up the cluster: base system, etcd, PostgreSQL + Patroni, HAProxy + keepalived, RabbitMQ, Airflow (apply --playbook bootstrap)',
      )
      .addOption(inventoryOpt())
      .option('--playbook <name>', 'playbook to run', DEFAULT_PLAYBOOK)
      .option('-l, --limit <hosts|roles>', 'comma-separated host names and/or roles')
      .option('--json', 'one JSON event per line on stdout')
      .option('--diff', 'show diffs of changed files (always on for plan)')
      .option('-v, --verbose', 'also list tasks that were already in the desired state')
      .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)');
    if (name !== 'plan') {
      cmd.option('--new-cluster', 'hosts set up with other secrets (another secrets fingerprint) are set up anew with this secrets file; without it such a run is refused');
    }
    return stepOptions(cmd).action(async (o: RunFlags & { playbook: string }) => {
      const pb = await playbookByName(o.playbook);
      const loaded = await load(io, o.inventory, pb);
      const sel = await select(pb, loaded, o);
      if (!sel) return;
      const { operatorInputs } = await import('./operator.js');
      setExit(await run(name, pb, loaded, o, sel, await operatorInputs(loaded, io.cwd, { env: io.env })));
    });
  };
  runCommand('plan');
  runCommand('apply');
  runCommand('bootstrap');

  const deployDags = withExamples(
    program.command('deploy-dags'),
    'airflow-ha deploy-dags -i site.yaml    # dags.mode sync, the folder in cluster.dags.source',
    'airflow-ha deploy-dags -i site.yaml --source ~/dags --diff',
  )
    .description('ship the DAG folder to every Airflow host (dags.mode sync): compiled on one host first, then switched atomically everywhere')
    .addOption(inventoryOpt())
    .option('--source <dir>', 'the DAG folder (default: cluster.dags.source, relative to the inventory)')
    .option('-l, --limit <hosts|roles>', 'comma-separated host names and/or roles')
    .option('--json', 'one JSON event per line on stdout')
    .option('--diff', 'show diffs of changed files')
    .option('-v, --verbose', 'also list tasks that were already in the desired state')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)');
  stepOptions(deployDags).action(async (o: RunFlags & { source?: string }) => {
    const pb = await playbookByName('deploy-dags');
    const loaded = await load(io, o.inventory, pb);
    const [{ dagsMode }, { dagSource, operatorInputs }] = await Promise.all([import('../inventory/rules.js'), import('./operator.js')]);
    if (dagsMode(loaded.inventory) !== 'sync') {
      throw new InputError(`deploy-dags ships a folder in dags.mode sync; this inventory uses ${dagsMode(loaded.inventory)} ${dagsMode(loaded.inventory) === 'git' ? '(the DAG processors fetch the DAG files from dags.git.url: push to that repository)' : '(the DAG files live on the NFS export)'}`);
    }
    if (dagSource(loaded, io.cwd, o.source) === undefined) throw new InputError('deploy-dags needs a DAG folder: --source DIR or cluster.dags.source');
    const sel = await select(pb, loaded, o);
    if (!sel) return;
    // Read now: a missing or unusable folder is bad input (exit 2) before anything connects.
    const inputs = await operatorInputs(loaded, io.cwd, { ...(o.source ? { source: o.source } : {}), eagerDags: true });
    // No preflight: deploy-dags ships files to a cluster bootstrap already set up.
    setExit(await run('apply', pb, loaded, o, sel, inputs, false));
  });

  withExamples(
    program.command('exec'),
    'airflow-ha exec -i inventory/lab.yaml -l all -- uptime',
    'airflow-ha exec -i inventory/lab.yaml -l postgresql -- systemctl is-active patroni',
  )
    .description('run a shell command as root on the selected hosts, in parallel')
    .addOption(inventoryOpt())
    .requiredOption('-l, --limit <hosts|roles>', 'comma-separated host names and/or roles ("all" for every host)')
    .option('--json', 'one JSON object per host')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them')
    .argument('<command...>', 'the command (after --)')
    .action(async (words: string[], o: { inventory: string; limit: string; json?: boolean } & SshFlags) => {
      const loaded = await load(io, o.inventory);
      const inv = loaded.inventory;
      const [{ parseLimit, selectHosts }, { secretsIfReadable }, { maskSecrets }, { raw }, { buildTransport }] = await Promise.all([
        import('../run/playbook.js'),
        import('./secrets.js'),
        import('../core/secret.js'),
        import('../core/cmd.js'),
        import('./transport.js'),
      ]);
      let hosts;
      try {
        hosts = selectHosts(inv, o.limit === 'all' ? { all: true } : parseLimit(inv, o.limit));
      } catch (e) {
        throw new InputError((e as Error).message);
      }
      // exec only masks the secrets in what the hosts print: it never creates them.
      const secrets = await secretsIfReadable(loaded, io, 'the output of the command is not masked');
      const mask = (t: string) => maskSecrets(t, secrets ? Object.values(secrets) : []);
      const transport = await buildTransport(loaded, io, o);
      // The operator's own shell text, run as written: this is what `exec` is for.
      const cmd = raw(words.join(' '));
      let worst: number = ExitCode.ok;
      try {
        await Promise.all(
          hosts.map(async (h) => {
            try {
              const conn = await transport.connect(h.name);
              const res = await conn.exec(cmd);
              if (res.code !== 0) worst = Math.max(worst, ExitCode.taskFailed);
              if (o.json) io.out(`${JSON.stringify({ host: h.name, exitCode: res.code, stdout: mask(res.stdout), stderr: mask(res.stderr) })}\n`);
              else {
                const body = mask(`${res.stdout}${res.stderr}`).trimEnd();
                io.out(`${h.name} | exit ${res.code ?? 'none'}${body.includes('\n') ? '\n' : ' | '}${body}\n`);
              }
            } catch (e) {
              worst = Math.max(worst, e instanceof AirflowHaError ? e.exitCode : ExitCode.taskFailed);
              const msg = mask((e as Error).message);
              if (o.json) io.out(`${JSON.stringify({ host: h.name, exitCode: null, error: msg })}\n`);
              else io.err(`${h.name} | ${msg}\n`);
            }
          }),
        );
      } finally {
        await transport.close();
      }
      setExit(worst);
    });

  const lock = withExamples(program.command('lock'), 'airflow-ha lock status -i inventory/lab.yaml', 'airflow-ha lock release -i inventory/lab.yaml').description(
    'the run lock on the cluster\'s first host',
  );
  for (const action of ['status', 'release'] as const) {
    withExamples(lock.command(action), `airflow-ha lock ${action} -i inventory/lab.yaml`)
      .description(action === 'status' ? 'show who holds the run lock' : 'break the run lock (use when a run was killed)')
      .addOption(inventoryOpt())
      .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them')
      .action(async (o: { inventory: string } & SshFlags) => {
        const loaded = await load(io, o.inventory);
        const first = loaded.inventory.hosts[0];
        if (!first) throw new InputError('inventory has no hosts');
        const [{ describeHolder, lockStatusCmd, releaseLockCmd }, { buildTransport }] = await Promise.all([import('../run/lock.js'), import('./transport.js')]);
        const transport = await buildTransport(loaded, io, o);
        try {
          const conn = await transport.connect(first.name);
          if (action === 'status') {
            const res = await conn.exec(lockStatusCmd());
            io.out(res.stdout.trim() ? `held on ${first.name}: ${describeHolder(res.stdout)}\n` : `free (${first.name})\n`);
            if (res.stdout.trim()) setExit(ExitCode.lockHeld);
          } else {
            const before = await conn.exec(lockStatusCmd());
            await conn.exec(releaseLockCmd());
            io.out(before.stdout.trim() ? `released the lock held by ${describeHolder(before.stdout)}\n` : `lock was free (${first.name})\n`);
          }
        } finally {
          await transport.close();
        }
      });
  }

  const lab = withExamples(program.command('lab'), 'airflow-ha lab up -i inventory/lab.yaml', 'airflow-ha lab down -i inventory/lab.yaml').description(
    'a lab of real hosts on this machine: one systemd container per inventory host',
  );
  withExamples(lab.command('up'), 'airflow-ha lab up -i inventory/lab.yaml')
    .description('boot the lab (installs debootstrap, systemd-container, apt-cacher-ng when missing)')
    .addOption(inventoryOpt())
    .action(async (o: { inventory: string }) => {
      const loaded = await load(io, o.inventory);
      const { labUp } = await labModule();
      await labUp(loaded.inventory, { stateDir: loaded.stateDir }, (l) => io.err(`${l}\n`));
      io.out(`lab ${loaded.inventory.cluster.name}: ${loaded.inventory.hosts.length} host(s) up\n`);
    });
  withExamples(lab.command('down'), 'airflow-ha lab down -i inventory/lab.yaml')
    .description('stop the lab and remove what lab up created (the cached base root is kept)')
    .addOption(inventoryOpt())
    .action(async (o: { inventory: string }) => {
      const loaded = await load(io, o.inventory);
      const { labDown } = await labModule();
      await labDown(loaded.inventory, { stateDir: loaded.stateDir }, (l) => io.err(`${l}\n`));
      io.out(`lab ${loaded.inventory.cluster.name}: down\n`);
    });
  withExamples(lab.command('status'), 'airflow-ha lab status -i inventory/lab.yaml', 'airflow-ha lab status -i inventory/lab.yaml --json')
    .description('which lab hosts are running and answer SSH')
    .addOption(inventoryOpt())
    .option('--json', 'one JSON document')
    .action(async (o: { inventory: string; json?: boolean }) => {
      const loaded = await load(io, o.inventory);
      const { labStatus } = await labModule();
      const st = await labStatus(loaded.inventory, { stateDir: loaded.stateDir });
      if (o.json) io.out(`${JSON.stringify(st)}\n`);
      else for (const h of st) io.out(`${h.name.padEnd(12)} ${h.address.padEnd(15)} ${h.running ? 'running' : 'stopped'}${h.sshUp ? ', ssh up' : ''}\n`);
      if (st.some((h) => !h.running || !h.sshUp)) setExit(ExitCode.unreachable);
    });

  registerWorkerCommands(program, io, argv, setExit);
  registerRotateCommand(program, io, argv, setExit);
  registerCertsCommand(program, io, argv, setExit);
  registerUpgradeCommand(program, io, argv, setExit);
  registerSshCommands(program, io, setExit, (i, file) => load(i, file));

  withExamples(program.command('endpoints'), 'airflow-ha endpoints -i inventory/lab.yaml')
    .description('where the cluster answers from this machine (UI, Flower, HAProxy stats, PostgreSQL, RabbitMQ) and which secret holds each login; offline, prints no password')
    .addOption(inventoryOpt())
    .action(async (o: { inventory: string }) => {
      const { endpointsText } = await import('./endpoints.js');
      io.out(endpointsText(await load(io, o.inventory)));
    });

  withExamples(program.command('dags-key'), 'airflow-ha dags-key -i inventory/prod.yaml > dags-deploy-key.pub')
    .description('dags.mode git: print the public half of the deploy key the DAG processors fetch the repository with (made in the state folder on first use); add it to the repository as a read-only deploy key before bootstrap; offline')
    .addOption(inventoryOpt())
    .action(async (o: { inventory: string }) => {
      const loaded = await load(io, o.inventory);
      const { dagsMode } = await import('../inventory/rules.js');
      if (dagsMode(loaded.inventory) !== 'git') throw new InputError(`${loaded.file}: cluster.dags.mode is ${dagsMode(loaded.inventory)}, not git: there is no deploy key`);
      const { dagsGitKeypair, DAGS_GIT_KEY_NAME } = await import('./operator.js');
      const key = await dagsGitKeypair(loaded);
      if (key.created) io.err(`created the deploy key ${path.join(loaded.stateDir, DAGS_GIT_KEY_NAME)} (keep it with the state folder)\n`);
      io.out(`${key.publicKey.trim()}\n`);
    });

  withExamples(program.command('schema'), 'airflow-ha schema > inventory/inventory.schema.json')
    .description('print the JSON Schema of the inventory (for editors)')
    .action(async () => {
      const { inventoryJsonSchema } = await import('../inventory/schema.js');
      io.out(`${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`);
    });

  withExamples(program.command('facts'), 'airflow-ha facts -i inventory/lab.yaml', 'airflow-ha facts -i inventory/lab.yaml -l sql1 --accept-new-host-keys')
    .description('print the facts airflow-ha reads from each host when it connects')
    .addOption(inventoryOpt())
    .option('-l, --limit <hosts|roles>', 'comma-separated host names and/or roles')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them')
    .action(async (o: { inventory: string; limit?: string } & SshFlags) => {
      const loaded = await load(io, o.inventory);
      const [{ parseLimit, selectHosts }, { gatherFacts }, { hostFacts: hostFactsFact }, { buildTransport }] = await Promise.all([
        import('../run/playbook.js'),
        import('../run/facts.js'),
        import('../facts/host.js'),
        import('./transport.js'),
      ]);
      const hosts = selectHosts(loaded.inventory, parseLimit(loaded.inventory, o.limit));
      const transport = await buildTransport(loaded, io, o);
      try {
        const out: Record<string, HostFacts> = {};
        await Promise.all(
          hosts.map(async (h) => {
            const conn = await transport.connect(h.name);
            out[h.name] = (await gatherFacts(conn, [hostFactsFact])).get(hostFactsFact);
          }),
        );
        io.out(`${JSON.stringify(out, null, 2)}\n`);
      } finally {
        await transport.close();
      }
    });

  withExamples(
    program.command('drill'),
    'airflow-ha drill -i site.yaml --scenario db-leader    # says what it would do; changes nothing',
    'airflow-ha drill -i site.yaml --scenario db-leader vip worker,scheduler --hold 30 --yes --json',
  )
    .description('fail one component of the live cluster at a time under load (writes, confirmed publishes, Celery tasks); measure detection, the longest gap and the acknowledged items lost; restore; print them beside the design document\'s figures')
    .addOption(inventoryOpt())
    .requiredOption('--scenario <names...>', 'db-leader, vip, broker-node, worker, scheduler, dag-processor (several: space- or comma-separated)')
    .option('--yes', 'really inject the failures (without it: print what would be done, exit 2)')
    .option('--hold <seconds>', 'how long each failure is held before the drill restores it', '60')
    .option('--json', 'one JSON event per line on stdout, then a drill_report document')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them')
    .action(async (o: { inventory: string; scenario: string[]; yes?: boolean; hold: string; json?: boolean } & SshFlags) => {
      const loaded = await load(io, o.inventory);
      const { drillCommand } = await import('./drill.js');
      setExit(await drillCommand(io, loaded, o, ['airflow-ha', ...argv.slice(2)].join(' ')));
    });

  withExamples(
    program.command('backup'),
    'airflow-ha backup -i inventory/lab.yaml --type diff',
    'airflow-ha backup list -i inventory/lab.yaml',
  )
    .description('take a pgBackRest backup of the PostgreSQL cluster now, on the backup host; `backup list`: the backups in the repository (README "Backups")')
    .argument('[list]', '"list": the backups in the repository (pgbackrest info): label, type, time, size, WAL range')
    .addOption(inventoryOpt())
    .addOption(new Option('--type <type>', 'full, diff (changes since the last full) or incr (since the last backup)').choices(['full', 'diff', 'incr']))
    .option('--json', 'one JSON line {type, backupType, label}; with list: the parsed stanza as one document')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them')
    .action(async (what: string | undefined, o: { inventory: string; type?: string; json?: boolean } & SshFlags) => {
      if (what !== undefined && what !== 'list') throw new InputError(`backup: unknown argument "${what}" (backup [--type full|diff|incr], or backup list)`);
      if (what === 'list' && o.type) throw new InputError('backup list: --type is for taking a backup');
      const loaded = await load(io, o.inventory);
      const { backupListCommand, backupNowCommand } = await import('./backup.js');
      setExit(what === 'list' ? await backupListCommand(io, loaded, o) : await backupNowCommand(io, loaded, o));
    });

  withExamples(
    program.command('restore'),
    'airflow-ha restore -i site.yaml --to 2026-12-07T02:45:00Z    # prints the plan; changes nothing',
    'airflow-ha restore -i site.yaml --to "2026-12-07 02:45:00+00" --yes',
  )
    .description('point-in-time restore of the PostgreSQL cluster from pgBackRest: pause Airflow, stop Patroni everywhere, restore the leader, re-create the replicas, resume (README "Backups")')
    .addOption(inventoryOpt())
    .option('--to <timestamp>', 'ISO 8601 time with its zone to recover to (default: the end of the WAL archive)')
    .option('--yes', 'really restore (without it: print the plan, exit 2)')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them')
    .action(async (o: { inventory: string; to?: string; yes?: boolean } & SshFlags) => {
      const loaded = await load(io, o.inventory);
      const { restoreCommand } = await import('./backup.js');
      setExit(await restoreCommand(io, loaded, o, ['airflow-ha', ...argv.slice(2)].join(' ')));
    });

  withExamples(
    program.command('status'),
    'airflow-ha status -i inventory/lab.yaml',
    'airflow-ha status -i inventory/lab.yaml --watch 5    # refresh every 5 s until Ctrl-C',
  )
    .description('is the cluster serving, what is degraded, on which host, and why (read-only; takes no lock)')
    .addOption(inventoryOpt())
    .option('--json', 'one JSON document (fields in README "status"; every check)')
    .option('--all', 'every check of every component (by default a healthy component takes one line)')
    .option('--watch [seconds]', 'refresh in place every SECONDS (default 2) until interrupted')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them')
    .action(async (o: { inventory: string; json?: boolean; all?: boolean; watch?: boolean | string } & SshFlags) => {
      const loaded = await load(io, o.inventory);
      const watch = o.watch === undefined ? undefined : o.watch === true ? 2 : Number(o.watch);
      if (watch !== undefined && !(watch > 0)) throw new InputError(`--watch takes a number of seconds > 0, got "${String(o.watch)}"`);
      const [{ secretsIfReadable }, { buildTransport }, { statusCommand }] = await Promise.all([import('./secrets.js'), import('./transport.js'), import('./status.js')]);
      const secrets = await secretsIfReadable(loaded, io, 'status runs without the secrets: the checks that log in report that they cannot');
      const transport = await buildTransport(loaded, io, o, { retries: 0, keepaliveIntervalSec: 5 });
      try {
        setExit(await statusCommand({ inventory: loaded.inventory, ...(secrets ? { secrets } : {}) }, transport, io, { json: Boolean(o.json), all: Boolean(o.all), ...(watch ? { watchSec: watch } : {}) }));
      } finally {
        await transport.close();
      }
    });

  return addSshOptions(program);
}

/**
 * Runs the CLI with `argv` (as process.argv: node, script, args...). Returns the exit code; never
 * calls process.exit, so tests can call it in-process.
 */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = buildProgram(io, argv, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv as string[]);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? ExitCode.ok : ExitCode.badInput;
    }
    if (e instanceof InputError) {
      io.err(`error: ${e.message}\n`);
      for (const d of e.diagnostics) io.err(`${formatDiagnostic(d)}\n`);
      return e.exitCode;
    }
    if (e instanceof AirflowHaError) {
      io.err(`error: ${e.message}\n`);
      return e.exitCode;
    }
    io.err(`error: ${(e as Error).stack ?? String(e)}\n`);
    return ExitCode.taskFailed;
  }
}
