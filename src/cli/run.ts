/**
 * Running a playbook from the command line: reporter, journal, transport and the runner, shared
 * by `plan`, `apply`, `bootstrap`, `add-worker` and `remove-worker`.
 */
import os from 'node:os';
import type { LoadedInventory } from '../inventory/load.js';
import type { Inventory } from '../inventory/schema.js';
import { sourcedNames } from '../inventory/secret-sources.js';
import type { Secret } from '../core/secret.js';
import { loadOrCreateSecrets, requireSecrets, secretsFilePath, type ClusterSecrets } from '../inventory/secrets.js';
import { fanOut, type Reporter } from '../run/events.js';
import { runPlaybook } from '../run/execute.js';
import { journalReporter } from '../run/journal.js';
import type { OperatorInputs, Playbook, Selector } from '../run/playbook.js';
import type { StepStart } from '../run/steps.js';
import { jsonReporter, plainReporter, type Streams } from './output.js';
import { secretsSettings } from './secrets.js';
import { buildTransport } from './transport.js';

/** What a command may touch of the process: output streams, the environment, the working directory. */
export interface Io extends Streams {
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** `--json` events, plain lines, or (on a TTY) the live listr2 view. */
export async function reporterFor(io: Io, opts: { json?: boolean; diff?: boolean; verbose?: boolean }): Promise<Reporter> {
  if (opts.json) return jsonReporter(io);
  const human = { diff: Boolean(opts.diff), verbose: Boolean(opts.verbose) };
  if (!io.isTTY) return plainReporter(io, human);
  // listr2 is loaded only for a terminal: start-up time counts on every run.
  const { liveReporter } = await import('./live.js');
  return liveReporter(io, human);
}

/** `user@machine` of the operator, recorded in the run lock and the journal. */
export function operator(io: Io): string {
  return `${io.env['USER'] ?? os.userInfo().username}@${os.hostname()}`;
}

/** Options of one playbook run from the CLI. */
export interface CliRunOptions {
  check: boolean;
  limit: Selector;
  json?: boolean;
  diff?: boolean;
  verbose?: boolean;
  /** `--accept-new-host-keys`, `-F/--ssh-config`, `--known-hosts` (see src/cli/transport.ts). */
  acceptNewHostKeys?: boolean;
  sshConfig?: string;
  knownHosts?: string;
  /** What the operator's machine contributes (the DAG folder, pinned host keys); see src/cli/operator.ts. */
  inputs?: OperatorInputs;
  /** The command line, for the lock and the journal. */
  command: string;
  /** Check the hosts first (src/preflight/rules.ts): plan, apply, bootstrap, add-worker. */
  preflight?: boolean;
  /** `--new-cluster`: hosts set up with other secrets are to be set up anew with these (see src/run/fingerprint.ts). */
  newCluster?: boolean;
  /** `--from-step`, `--retry-failed`: where the run starts and on which hosts (see src/cli/resume.ts). */
  start?: StepStart;
  /** `--retry-failed`: the run whose failed hosts this one retries. */
  retryOf?: string;
  /** The command line that resumes this run from a failed step (src/cli/resume.ts resumeCommand). */
  resumeCommand?: (step: string) => string;
  /**
   * rotate-secret: the run's secrets (the set after the rotation) and the set before it, instead of
   * loading them; hosts of either set are accepted, the new fingerprint is written after the last step.
   */
  rotation?: { secrets: ClusterSecrets; previous: ClusterSecrets };
  /** Also receives every event (rotate-secret reads the run's end). */
  observe?: Reporter;
}

/** The output and SSH flags of a command that runs a playbook, as {@link CliRunOptions} takes them. */
export function runFlags(o: { json?: boolean; diff?: boolean; verbose?: boolean; acceptNewHostKeys?: boolean; sshConfig?: string; knownHosts?: string }) {
  return { json: o.json, diff: o.diff, verbose: o.verbose, acceptNewHostKeys: o.acceptNewHostKeys, sshConfig: o.sshConfig, knownHosts: o.knownHosts };
}

/**
 * Runs `pb` on `inventory` (default: the loaded one; add-worker passes an edited one) with the
 * real SSH transport, printing events as `opts` asks and journaling them under the state folder.
 * Returns the run's exit code (README "Exit codes").
 */
export async function runPlaybookCli(io: Io, loaded: LoadedInventory, pb: Playbook, opts: CliRunOptions, inventory: Inventory = loaded.inventory): Promise<number> {
  // Check mode never creates secrets: a plan of a cluster without its secrets file would plan new ones.
  const settings = secretsSettings({ ...loaded, inventory }, io.env);
  const { secrets, created } = opts.rotation
    ? { secrets: opts.rotation.secrets, created: [] }
    : opts.check
      ? { secrets: await requireSecrets(loaded.stateDir, `airflow-ha bootstrap -i ${loaded.file}`, settings), created: [] }
      : await loadOrCreateSecrets(loaded.stateDir, settings);
  const secretsGuard = {
    file: secretsFilePath(loaded.stateDir, settings),
    created,
    sourced: sourcedNames(settings),
    newCluster: Boolean(opts.newCluster),
    command: opts.command,
    ...(opts.rotation ? { previous: opts.rotation.previous } : {}),
  };
  const transport = await buildTransport({ ...loaded, inventory }, io, opts);
  const runId = `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
  const reporter = fanOut(await reporterFor(io, opts), journalReporter(loaded.stateDir, runId), ...(opts.observe ? [opts.observe] : []));
  try {
    const result = await runPlaybook({
      playbook: pb,
      inventory,
      secrets,
      ...(opts.rotation ? { alsoMask: Object.values(opts.rotation.previous) as Secret[] } : {}),
      ...(opts.inputs ? { inputs: opts.inputs } : {}),
      transport,
      reporter,
      check: opts.check,
      limit: opts.limit,
      ...(opts.start ? { start: opts.start } : {}),
      ...(opts.retryOf ? { retryOf: opts.retryOf } : {}),
      ...(opts.resumeCommand ? { resumeCommand: opts.resumeCommand } : {}),
      command: opts.command,
      preflight: Boolean(opts.preflight),
      secretsGuard,
      operator: operator(io),
      runId,
    });
    return result.exitCode;
  } finally {
    await reporter.close?.();
    await transport.close();
  }
}
