/**
 * `airflow-ha rotate-secret -i FILE NAME [--new-value-from env:VAR] [--check]`: rolls one secret
 * through every component that uses it on the running cluster (the steps: playbooks/rotate-secret.ts),
 * then keeps the store and the hosts' fingerprint in step with it.
 *
 * Where the new value comes from:
 * - a secret of the secrets file (clear or age-encrypted): generated (or `--new-value-from`), first
 *   recorded as a pending rotation beside the file (old and new value, 0600 or age-encrypted), so a
 *   rotation that stops midway resumes with the same value; the secrets file gets the new value
 *   (temp file + rename, re-encrypted) only once every host runs with it, then the record goes.
 * - a secret from an env or command source: airflow-ha cannot write that store. The operator passes
 *   the new value with `--new-value-from env:VAR` while the source still gives the old one (which the
 *   hosts' fingerprint confirms), and changes the store after the rotation; nothing is recorded.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { ExitCode, InputError } from '../core/errors.js';
import { inventoryOption, withExamples } from './options.js';
import type { Io } from './run.js';
import type { SshFlags } from './transport.js';

interface RotateFlags extends SshFlags {
  inventory: string;
  newValueFrom?: string;
  check?: boolean;
  json?: boolean;
  diff?: boolean;
  verbose?: boolean;
}

/**
 * `env:VAR` of `--new-value-from` as the variable's name.
 * @throws InputError for another form, naming the one accepted.
 */
export function parseNewValueFrom(spec: string): string {
  const m = /^env:([A-Za-z_][A-Za-z0-9_]*)$/.exec(spec);
  if (!m) throw new InputError(`--new-value-from: "${spec}" is not env:VAR (the new value is read from the environment variable VAR; nothing else is accepted, so the value is in no argv)`);
  return m[1] as string;
}

/** Registers `rotate-secret` on `program`; `setExit` receives the exit code. */
export function registerRotateCommand(program: Command, io: Io, argv: readonly string[], setExit: (code: number) => void): void {
  withExamples(
    program.command('rotate-secret'),
    'airflow-ha rotate-secret -i inventory/lab.yaml airflowDb --check    # the plan: steps and hosts, nothing changed',
    'airflow-ha rotate-secret -i site.yaml airflowDb --new-value-from env:NEW_DB_PASSWORD    # a secret from your own store: the new value from the environment',
  )
    .description('roll one secret through every component that uses it on the running cluster, then update the secrets file and the hosts\' fingerprint')
    .addOption(inventoryOption(io.env))
    .argument('<name>', 'the secret (a key of secrets.yaml, e.g. airflowDb, postgresSuperuser, rabbitmqAirflow, airflowFernetKey)')
    .option('--new-value-from <env:VAR>', 'take the new value from environment variable VAR (required for a secret from an env or command source; default for the secrets file: generated)')
    .option('--check', 'print the plan (steps, hosts, where the value comes from) and change nothing; connects nowhere')
    .option('--json', 'one JSON event per line on stdout')
    .option('--diff', 'show diffs of changed files (secret values are never shown)')
    .option('-v, --verbose', 'also list tasks that were already in the desired state')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .action(async (name: string, o: RotateFlags) => setExit(await rotateSecret(io, argv, name, o)));
}

async function rotateSecret(io: Io, argv: readonly string[], name: string, o: RotateFlags): Promise<number> {
  const [secretsMod, sourcesMod, rotation, { loadInventory }, { secretsSettings }, { runPlaybookCli, runFlags }, { operatorInputs }] = await Promise.all([
    import('../inventory/secrets.js'),
    import('../inventory/secret-sources.js'),
    import('../../playbooks/rotate-secret.js'),
    import('../inventory/load.js'),
    import('./secrets.js'),
    import('./run.js'),
    import('./operator.js'),
  ]);
  const { Secret } = await import('../core/secret.js');
  const { SECRET_NAMES, SECRET_KINDS, generateSecretValue, validateSecretValue, readSecrets, readPendingRotation, writePendingRotation, removePendingRotation, writeSecretValue, secretsFilePath, rotationFilePath } = secretsMod;
  if (!(SECRET_NAMES as string[]).includes(name)) throw new InputError(`rotate-secret: "${name}" is not a secret (secrets: ${SECRET_NAMES.join(', ')})`);
  const secret = name as (typeof SECRET_NAMES)[number];
  const say = (t: string) => (o.json ? io.err(t) : io.out(t));
  rotation.assertRotatable(secret);
  const loaded = await loadInventory(path.resolve(io.cwd, o.inventory));
  const settings = secretsSettings(loaded, io.env);
  const current = await readSecrets(loaded.stateDir, settings);
  const file = secretsFilePath(loaded.stateDir, settings);
  if (!current) throw new InputError(`rotate-secret: the cluster's secrets are not complete (${file} is missing or lacks a key): there is nothing to rotate; \`airflow-ha bootstrap -i ${o.inventory}\` sets a cluster up`);
  const source = sourcesMod.sourcedNames(settings).find((s) => s.name === secret);
  const fromEnv = o.newValueFrom === undefined ? undefined : parseNewValueFrom(o.newValueFrom);
  const given = fromEnv === undefined ? undefined : io.env[fromEnv];
  if (fromEnv !== undefined && !given) throw new InputError(`--new-value-from env:${fromEnv}: the variable is not set or empty; nothing was changed`);
  const checked = (value: string, where: string) => {
    const bad = validateSecretValue(secret, value);
    if (bad) throw new InputError(`${secret}: the new value (${where}) is refused [${bad.rule}]: ${bad.message}; nothing was changed`);
    return value;
  };

  const pending = await readPendingRotation(loaded.stateDir, settings);
  if (pending && pending.secret !== secret) {
    throw new InputError(`the rotation of ${pending.secret} is unfinished (${rotationFilePath(loaded.stateDir, settings)}): finish it first with \`airflow-ha rotate-secret -i ${o.inventory} ${pending.secret}\`; nothing was changed`);
  }
  let oldValue: string;
  let newValue: string;
  let origin: string;
  if (source && given === undefined && o.check) {
    oldValue = current[secret].reveal();
    newValue = oldValue;
    origin = `from its ${source.kind} source, which airflow-ha cannot write: the run needs the new value with --new-value-from env:VAR while the source still gives the old one`;
  } else if (source) {
    if (given === undefined) {
      throw new InputError(
        `${secret} comes from ${source.kind === 'env' ? 'an env' : 'a command'} source, which airflow-ha cannot write: pass the new value with --new-value-from env:VAR while the source still gives the old one, ` +
          'then change the store once the rotation is done; nothing was changed',
      );
    }
    oldValue = current[secret].reveal();
    newValue = checked(given, `env ${fromEnv}`);
    if (newValue === oldValue) throw new InputError(`${secret}: the new value (env ${fromEnv}) is the one its ${source.kind} source gives now; if you already changed the store, give it the old value back until the rotation is done; nothing was changed`);
    origin = `from its ${source.kind} source (the old value) and env ${fromEnv} (the new one); the store is yours to change afterwards`;
  } else if (pending) {
    oldValue = pending.old.reveal();
    newValue = pending.new.reveal();
    if (given !== undefined && given !== newValue) throw new InputError(`${secret}: a rotation to another new value is under way (${rotationFilePath(loaded.stateDir, settings)}); resume it without --new-value-from, or finish it first; nothing was changed`);
    const now = current[secret].reveal();
    if (now !== oldValue && now !== newValue) throw new InputError(`${file}: ${secret} is neither the value before nor after the rotation under way (edited by hand?); nothing was changed`);
    origin = `the rotation under way (${rotationFilePath(loaded.stateDir, settings)}), resumed with its new value; ${file} gets it at the end`;
  } else {
    oldValue = current[secret].reveal();
    newValue = given === undefined ? generateSecretValue(SECRET_KINDS[secret]) : checked(given, `env ${fromEnv}`);
    if (newValue === oldValue) throw new InputError(`${secret}: the new value is the current one; nothing was changed`);
    origin = `${file}; the new value ${given === undefined ? 'generated' : `from env ${fromEnv}`}, kept in ${rotationFilePath(loaded.stateDir, settings)} until the rotation ends, then written to ${file}`;
  }
  const old = new Secret(oldValue);
  const planned = rotation.rotationPlaybook(secret, old);
  const outline = rotation.rotationOutline(loaded.inventory, planned);
  const command = ['airflow-ha', ...argv.slice(2)].join(' ');

  if (o.check) {
    say(`rotate-secret ${secret} (check: nothing changed, nothing connected)\nvalue: ${origin}\nsteps:\n`);
    for (const s of outline) say(`  ${s.step}: ${s.hosts.join(', ')}${s.rolling ? ' (one at a time)' : ''}${s.gate ? `; gate: ${s.gate}` : ''}\n      then: ${s.done}\n`);
    return ExitCode.ok;
  }

  if (!source && !pending) await writePendingRotation(loaded.stateDir, settings, { secret, old, new: new Secret(newValue) });
  const after = { ...current, [secret]: new Secret(newValue) };
  const before = { ...current, [secret]: old };
  let end: { failedStep?: string; failedHosts?: string[] } = {};
  const exitCode = await runPlaybookCli(io, loaded, planned, {
    check: false,
    limit: { all: true },
    ...runFlags(o),
    inputs: await operatorInputs(loaded, io.cwd),
    command,
    rotation: { secrets: after, previous: before },
    observe: { emit: (e) => void (e.type === 'run_end' && (end = e)) },
  });
  if (exitCode !== ExitCode.ok) {
    if (end.failedStep) io.err(rotation.rotationStopped(loaded.inventory, planned, end.failedStep, end.failedHosts ?? [], command));
    else io.err(`rotate-secret ${secret}: nothing was changed on the hosts${source || pending ? '' : `; the new value waits in ${rotationFilePath(loaded.stateDir, settings)}`}; run \`${command}\` again once the cause is fixed\n`);
    return exitCode;
  }
  if (source) {
    say(
      `rotated ${secret}: every component uses the new value and every host holds the new fingerprint. Now put the new value into its ${source.kind} source: ` +
        'until the source gives it, every other run is refused (the hosts hold the new secrets\' fingerprint)\n',
    );
  } else {
    await writeSecretValue(loaded.stateDir, settings, secret, newValue);
    await removePendingRotation(loaded.stateDir, settings);
    say(`rotated ${secret}: every component uses the new value, every host holds the new fingerprint, ${file} holds the new value\n`);
  }
  return ExitCode.ok;
}
