import os from 'node:os';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import { resolveLocalPath, type LoadedInventory } from '../inventory/load.js';
import type { SshSettings } from '../inventory/schema.js';
import { SshPool, type SshHostConfig, type SshPoolOptions } from '../ssh/pool.js';
import type { Transport } from '../ssh/transport.js';

/** Default seconds for a TCP connect + SSH handshake. */
export const DEFAULT_CONNECT_TIMEOUT_SEC = 10;

/** Parses a jump spec `[user@]address[:port]`. */
function parseJump(spec: string, defaults: SshSettings): { user?: string; address: string; port?: number } {
  const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new InputError(`ssh.jump "${spec}" is not [user@]address[:port]`);
  return { user: m[1] ?? defaults.user, address: m[2] as string, port: m[3] ? Number(m[3]) : undefined };
}

/**
 * The real SSH transport for an inventory: per-host settings merged over the top-level `ssh`,
 * key paths relative to the inventory, the agent from SSH_AUTH_SOCK, key passphrases from the
 * environment variable the inventory names, known_hosts in the inventory's state folder.
 * `pool` overrides pool settings (e.g. `retries: 0` for `status`, which must answer in seconds).
 */
export function buildTransport(loaded: LoadedInventory, env: NodeJS.ProcessEnv, acceptNewHostKeys: boolean, pool: Partial<Pick<SshPoolOptions, 'retries' | 'keepaliveIntervalSec'>> = {}): Transport {
  const inv = loaded.inventory;
  const configFor = (settings: SshSettings, name: string, address: string, depth: number): SshHostConfig => {
    const s = { ...inv.ssh, ...settings };
    const passphrase = s.passphraseEnv ? env[s.passphraseEnv] : undefined;
    if (s.passphraseEnv && !passphrase) throw new InputError(`ssh.passphraseEnv names ${s.passphraseEnv}, which is not set`);
    const cfg: SshHostConfig = {
      name,
      address,
      port: s.port ?? 22,
      user: s.user ?? 'root',
      connectTimeoutSec: s.connectTimeoutSec ?? DEFAULT_CONNECT_TIMEOUT_SEC,
      ...(s.identityFile ? { identityFile: resolveLocalPath(s.identityFile, { dir: loaded.dir, home: os.homedir() }) } : {}),
      ...(passphrase ? { passphrase: new Secret(passphrase) } : {}),
      ...(s.agent && env['SSH_AUTH_SOCK'] ? { agent: env['SSH_AUTH_SOCK'] } : {}),
    };
    if (s.jump && s.jump !== name && depth < 3) {
      const jumpHost = inv.hosts.find((h) => h.name === s.jump);
      if (jumpHost) cfg.jump = configFor(jumpHost.ssh ?? {}, jumpHost.name, jumpHost.address, depth + 1);
      else {
        const j = parseJump(s.jump, inv.ssh);
        cfg.jump = configFor({ ...(j.user ? { user: j.user } : {}), ...(j.port ? { port: j.port } : {}), jump: undefined } as SshSettings, `jump:${j.address}`, j.address, depth + 1);
        delete cfg.jump.jump;
      }
    }
    return cfg;
  };
  const hosts = new Map(inv.hosts.map((h) => [h.name, configFor(h.ssh ?? {}, h.name, h.address, 0)]));
  return new SshPool({
    hosts,
    knownHostsFile: path.join(loaded.stateDir, 'known_hosts'),
    acceptNewHostKeys,
    ...pool,
  });
}
