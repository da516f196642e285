/**
 * The secrets settings of an inventory on this machine: its `secrets:` sources, the age encryption
 * of its secrets file (identity path expanded like an SSH identity file), and the process
 * environment the sources read and run with.
 */
import { formatDiagnostic, InputError } from '../core/errors.js';
import type { LoadedInventory } from '../inventory/load.js';
import { readSecrets, type ClusterSecrets } from '../inventory/secrets.js';
import type { SecretsSettings } from '../inventory/secret-sources.js';
import { expandPath } from './files.js';

/** `loaded`'s {@link SecretsSettings} with `env` (the process environment). */
export function secretsSettings(loaded: LoadedInventory, env: Readonly<Record<string, string | undefined>>): SecretsSettings {
  const f = loaded.inventory.secretsFile;
  return {
    ...(loaded.inventory.secrets ? { sources: loaded.inventory.secrets } : {}),
    ...(f.encryption === 'age' && f.identityFile !== undefined
      ? { age: { recipients: f.recipients, identityFile: expandPath(f.identityFile, loaded.dir), timeoutSec: f.timeoutSec } }
      : {}),
    env,
    cwd: loaded.dir,
  };
}

/**
 * The secrets for a read-only command that also works without them (`status`, `exec`): those of
 * {@link readSecrets}, or undefined when the file is missing or incomplete; when a source fails or
 * the file cannot be read, a `note:` on `err` says why and what the command does `without` them.
 */
export async function secretsIfReadable(loaded: LoadedInventory, io: { env: Readonly<Record<string, string | undefined>>; err: (text: string) => void }, without: string): Promise<ClusterSecrets | undefined> {
  try {
    return await readSecrets(loaded.stateDir, secretsSettings(loaded, io.env));
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    io.err(`note: ${e.message}\n${e.diagnostics.map((d) => `${formatDiagnostic(d)}\n`).join('')}note: ${without}\n`);
    return undefined;
  }
}
