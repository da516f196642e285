/**
 * `airflow-ha certs rotate -i FILE [--hosts a,b] [--check]`: renews the hosts' TLS certificates of a
 * cluster with `cluster.tls` (README "TLS"): a new key and a new certificate for each chosen host
 * (default every host), signed by the same CA, made in the state folder (src/cli/tls.ts), then the
 * bootstrap playbook rolls them out. The CA stays, so hosts with the old and the new certificate
 * trust each other while the run goes from host to host, and every component picks its files up the
 * way a changed key already makes it: etcd restarts one member at a time, Patroni reloads (PostgreSQL
 * and the REST API re-read their files on SIGHUP), RabbitMQ restarts one node at a time, HAProxy
 * reloads, and the UI servers restart with their new chain file.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { ExitCode, InputError } from '../core/errors.js';
import { inventoryOption, withExamples } from './options.js';
import type { Io } from './run.js';
import type { SshFlags } from './transport.js';

interface CertsRotateFlags extends SshFlags {
  inventory: string;
  hosts?: string;
  check?: boolean;
  json?: boolean;
  diff?: boolean;
  verbose?: boolean;
}

/**
 * The hosts `--hosts` names (comma-separated), or every host of the inventory without it.
 * @throws InputError for a name the inventory has no host of (exit 2, nothing made).
 */
export function rotateHosts(hostNames: readonly string[], spec: string | undefined): string[] {
  if (spec === undefined) return [...hostNames];
  const names = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.length) throw new InputError('certs rotate --hosts: no host named (give comma-separated host names, or leave the option out for every host)');
  const unknown = names.filter((n) => !hostNames.includes(n));
  if (unknown.length) throw new InputError(`certs rotate --hosts: no host ${unknown.join(', ')} in the inventory (hosts: ${hostNames.join(', ')})`);
  return [...new Set(names)];
}

/** Registers `certs rotate` on `program`; `setExit` receives the exit code. */
export function registerCertsCommand(program: Command, io: Io, argv: readonly string[], setExit: (code: number) => void): void {
  const certs = withExamples(program.command('certs'), 'airflow-ha certs rotate -i inventory/lab.yaml --check').description('the TLS certificates of a cluster with cluster.tls');
  withExamples(
    certs.command('rotate'),
    'airflow-ha certs rotate -i site.yaml --check    # which certificates, their end dates; nothing changed',
    'airflow-ha certs rotate -i site.yaml --hosts sql1,sql2    # without --hosts: every host',
  )
    .description('make a new key and certificate (same CA) for every host or the ones named, then roll them out with the bootstrap playbook (etcd and RabbitMQ one node at a time)')
    .addOption(inventoryOption(io.env))
    .option('--hosts <names>', 'comma-separated host names (default: every host)')
    .option('--check', 'print the hosts and their current certificates\' end dates; change nothing, connect nowhere')
    .option('--json', 'one JSON event per line on stdout')
    .option('--diff', 'show diffs of changed files (keys are never shown)')
    .option('-v, --verbose', 'also list tasks that were already in the desired state')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .action(async (o: CertsRotateFlags) => setExit(await certsRotate(io, argv, o)));
}

async function certsRotate(io: Io, argv: readonly string[], o: CertsRotateFlags): Promise<number> {
  const [{ loadInventory }, { runPlaybookCli, runFlags }, { operatorInputs }, { tlsHostsDir }, { playbooks }] = await Promise.all([
    import('../inventory/load.js'),
    import('./run.js'),
    import('./operator.js'),
    import('./tls.js'),
    import('../../playbooks/index.js'),
  ]);
  const say = (t: string) => (o.json ? io.err(t) : io.out(t));
  const pb = playbooks.bootstrap;
  const loaded = await loadInventory(path.resolve(io.cwd, o.inventory), { requiredRoles: pb.requiredRoles, playbook: pb.name });
  const inv = loaded.inventory;
  if (!inv.cluster.tls.enabled) throw new InputError(`certs rotate: ${loaded.file} has cluster.tls.enabled false: there are no certificates to rotate`);
  const names = rotateHosts(inv.hosts.map((h) => h.name), o.hosts);
  const certFile = (name: string) => path.join(tlsHostsDir(loaded.stateDir), `${name}.crt`);
  if (o.check) {
    say(`certs rotate (check: nothing changed, nothing connected): a new key and certificate, signed by the cluster CA, for ${names.length} host(s)\n`);
    for (const n of names) say(`  ${n}: ${await endDate(certFile(n))}\n`);
    say('then: the bootstrap playbook rolls them out (etcd and RabbitMQ restart one node at a time; Patroni and HAProxy reload; the UI servers restart)\n');
    return ExitCode.ok;
  }
  const inputs = await operatorInputs(loaded, io.cwd, { env: io.env, renewCerts: new Set(names) });
  for (const n of names) say(`renewed ${n}: ${await endDate(certFile(n))}\n`);
  const command = ['airflow-ha', ...argv.slice(2)].join(' ');
  const code = await runPlaybookCli(io, loaded, pb, { check: false, limit: { all: true }, ...runFlags(o), inputs, command, preflight: true });
  if (code !== ExitCode.ok) {
    io.err(
      `certs rotate: the run did not finish; the new certificates stay in ${tlsHostsDir(loaded.stateDir)} and the hosts not reached still have their old ones (the same CA signed both, so the cluster keeps working). ` +
        `\`airflow-ha bootstrap -i ${o.inventory}\` rolls out the rest once the cause is fixed (\`certs rotate\` again would make new ones again)\n`,
    );
  }
  return code;
}

/** `valid until <date> (<n> days)` of the certificate file, or why it cannot be read (no certificate yet: the first bootstrap makes it). */
async function endDate(file: string): Promise<string> {
  try {
    const cert = new X509Certificate(await readFile(file, 'utf8'));
    const end = new Date(cert.validTo);
    return `valid until ${end.toISOString().slice(0, 10)} (${Math.floor((end.getTime() - Date.now()) / 86_400_000)} days), serial ${cert.serialNumber.toLowerCase()}`;
  } catch (e) {
    return `no certificate yet (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}
