import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import type { LoadedInventory } from '../inventory/load.js';
import type { Inventory, SshSettings } from '../inventory/schema.js';
import { SshPool, type SshHostConfig, type SshPoolOptions } from '../ssh/pool.js';
import { expandSshConfigPath, lookupSshConfig, parseSshConfig, type JumpSpec, type ParsedSshConfig, type SshConfigLookup, type SshConfigValue, type TokenValues } from '../ssh/ssh-config.js';
import type { Transport } from '../ssh/transport.js';

/** Default seconds for a TCP connect + SSH handshake. */
export const DEFAULT_CONNECT_TIMEOUT_SEC = 10;

/** At most this many jump hosts between airflow-ha and a host (a chain `a,b` counts 2). */
export const MAX_JUMPS = 3;

/** The flags shared by every command that connects (see {@link addSshOptions} in options.ts). */
export interface SshFlags {
  /** `--accept-new-host-keys`: trust on first use, recorded in the state folder's known_hosts. */
  acceptNewHostKeys?: boolean;
  /** `-F FILE` / `--ssh-config FILE`: the OpenSSH client configuration to read; `none`: none. Default `~/.ssh/config` when it exists. */
  sshConfig?: string;
  /** `--known-hosts FILE`: an operator's known_hosts trusted besides the state folder's (read, never written). */
  knownHosts?: string;
}

/** What the `%` tokens and relative paths of ssh_config refer to on the operator's machine. */
export interface LocalFacts {
  home: string;
  user: string;
  uid: number;
  /** This machine's host name (`%l`). */
  hostname: string;
  /** Where relative IdentityFile paths of ssh_config start (ssh resolves them from the working directory). */
  cwd: string;
}

/** Everything {@link resolveSshHosts} reads: no file, no environment of its own. */
export interface ResolveInput {
  inventory: Inventory;
  /** The inventory file's folder: inventory `identityFile` paths are relative to it. */
  dir: string;
  /** The operator's ssh_config, parsed, or null (`-F none`, or no `~/.ssh/config`). */
  sshConfig: ParsedSshConfig | null;
  env: NodeJS.ProcessEnv;
  local: LocalFacts;
}

/** The SSH settings of every inventory host, and notes for the operator (options not used). */
export interface ResolvedHosts {
  hosts: Map<string, SshHostConfig>;
  notes: string[];
}

function expandInventoryPath(p: string, baseDir: string, home: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(home, p.slice(1));
  return path.resolve(baseDir, p);
}

/** Parses an inventory jump `[user@]address[:port]`. */
function parseInventoryJump(spec: string): JumpSpec {
  const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new InputError(`ssh.jump "${spec}" is not [user@]address[:port]`);
  return { ...(m[1] ? { user: m[1] } : {}), host: m[2] as string, ...(m[3] ? { port: Number(m[3]) } : {}) };
}

/** Settings one level of the precedence gives (inventory host, inventory top-level, ssh_config). */
type Layer = Partial<Pick<SshHostConfig, 'user' | 'port' | 'connectTimeoutSec' | 'identityFile' | 'agent'>> & { noAgent?: boolean };

/** A host to resolve: an inventory host, or a jump host outside the inventory as written. */
type Who = { kind: 'inventory'; name: string } | { kind: 'other'; spec: JumpSpec };

/** One host of a jump path and why it is reached through the next one. */
interface Edge {
  key: string;
  why: string;
}

/**
 * The SSH settings of every inventory host, pure: inventory + parsed ssh_config + environment in.
 *
 * Precedence, per setting, first that speaks wins:
 * 1. the host's own `ssh` in the inventory;
 * 2. the inventory's top-level `ssh`;
 * 3. the operator's ssh_config: the directives before the first `Host` and every `Host` block that
 *    matches the host's inventory name or its address, first value in file order (ssh_config(5));
 * 4. built-in defaults: user root, port 22, {@link DEFAULT_CONNECT_TIMEOUT_SEC} s, no key file, no agent.
 *
 * The address connected to is ssh_config's HostName when one is given (`%h` expanded), else the
 * inventory address. The jump: inventory `ssh.jump` (host, then top-level; a top-level jump naming
 * the host itself means "direct"), else ssh_config ProxyJump (`none`: direct; `a,b`: a is reached
 * first, b through a, the host through b). A jump that is an inventory host name is that host;
 * another is looked up in ssh_config under its name and gets, per setting: its own spec
 * (`user@host:port`), then ssh_config, then the inventory's top-level `ssh`, then the defaults.
 * IdentityFile (the first one given) and IdentityAgent expand `%` tokens, `${VAR}` and `~`
 * (ssh_config(5) TOKENS); IdentityAgent `SSH_AUTH_SOCK` is `$SSH_AUTH_SOCK`, `none` is no agent.
 * @throws InputError for a passphraseEnv that is not set, a bad token, a jump loop or more than
 *   {@link MAX_JUMPS} jumps (naming the ssh_config file and line where one is at fault).
 */
export function resolveSshHosts(input: ResolveInput): ResolvedHosts {
  const { inventory: inv, sshConfig: cfg, env, local } = input;
  const notes: string[] = [];
  const noted = new Set<string>();
  const note = (t: string) => {
    if (!noted.has(t)) notes.push(t);
    noted.add(t);
  };
  if (cfg) for (const n of cfg.notes) note(n);
  const at = (v: SshConfigValue<unknown>) => `${cfg?.file ?? 'ssh_config'} line ${v.line}`;
  const lookup = (names: string[]): SshConfigLookup => (cfg ? lookupSshConfig(cfg, names) : { identityFiles: [] });

  const inventoryLayer = (s: SshSettings | undefined): Layer => ({
    ...(s?.user !== undefined ? { user: s.user } : {}),
    ...(s?.port !== undefined ? { port: s.port } : {}),
    ...(s?.connectTimeoutSec !== undefined ? { connectTimeoutSec: s.connectTimeoutSec } : {}),
    ...(s?.identityFile !== undefined ? { identityFile: expandInventoryPath(s.identityFile, input.dir, local.home) } : {}),
    ...(s?.agent === true ? (env['SSH_AUTH_SOCK'] ? { agent: env['SSH_AUTH_SOCK'] } : { noAgent: true }) : s?.agent === false ? { noAgent: true } : {}),
  });

  /** ssh_config's user, port and timeout (no tokens in them). */
  const configPlain = (c: SshConfigLookup): Layer => ({
    ...(c.user ? { user: c.user.value } : {}),
    ...(c.port ? { port: c.port.value } : {}),
    ...(c.connectTimeout ? { connectTimeoutSec: c.connectTimeout.value } : {}),
  });

  /** ssh_config's IdentityFile and IdentityAgent, tokens expanded with the values that won. */
  const configPaths = (c: SshConfigLookup, t: TokenValues): Layer => {
    const expand = (v: SshConfigValue, what: string) => {
      try {
        return expandSshConfigPath(v.value, t, env);
      } catch (e) {
        throw new InputError(`${at(v)}: ${what}: ${(e as Error).message}`);
      }
    };
    const layer: Layer = {};
    const file = c.identityFiles[0];
    if (file && file.value.toLowerCase() !== 'none') layer.identityFile = path.resolve(local.cwd, expand(file, 'IdentityFile'));
    const agent = c.identityAgent;
    if (agent) {
      const v = agent.value;
      if (v.toLowerCase() === 'none') layer.noAgent = true;
      else if (v === 'SSH_AUTH_SOCK' || v.startsWith('$')) {
        const name = v === 'SSH_AUTH_SOCK' ? v : v.slice(1);
        const sock = env[name];
        if (sock) layer.agent = sock;
        else {
          layer.noAgent = true;
          note(`${at(agent)}: IdentityAgent ${v}: ${name} is not set, no agent is used`);
        }
      } else layer.agent = expand(agent, 'IdentityAgent');
    }
    return layer;
  };

  /** The value of the first layer that has one. */
  const pick = <K extends keyof Layer>(layers: readonly Layer[], k: K): Layer[K] => layers.find((l) => l[k] !== undefined)?.[k];

  const hostByName = new Map(inv.hosts.map((h) => [h.name, h]));
  /** A jump given as a bare inventory host name is that host; anything else is looked up as written. */
  const hop = (spec: JumpSpec): Who => (hostByName.has(spec.host) && !spec.user && !spec.port ? { kind: 'inventory', name: spec.host } : { kind: 'other', spec });
  const keyOf = (who: Who) => (who.kind === 'inventory' ? who.name : `jump:${who.spec.host}`);
  const describe = (chain: readonly Edge[]) => chain.map((e) => (e.why ? `${e.key} (${e.why})` : e.key)).join(' -> ');

  /**
   * A host's settings. `chain`: the hosts reached through this one, each with why it jumps to the
   * next (loop and depth check); `via`: the jump a ProxyJump chain imposes, replacing the host's own.
   */
  const resolve = (who: Who, chain: readonly Edge[], via?: SshHostConfig): SshHostConfig => {
    const key = keyOf(who);
    const here = [...chain, { key, why: '' }];
    if (chain.some((e) => e.key === key)) throw new InputError(`jump hosts form a loop: ${describe(here)}`);
    if (chain.length > MAX_JUMPS) throw new InputError(`host ${chain[0]?.key} would be reached through more than ${MAX_JUMPS} jump hosts: ${describe(here)}`);
    const edge = (why: string): Edge[] => [...chain, { key, why }];

    let name: string;
    let address: string;
    let original: string;
    let passphraseEnv: string | undefined;
    let c: SshConfigLookup;
    let before: Layer[];
    let after: Layer[] = [];
    let inventoryJump: string | null | undefined; // null: the inventory says "direct"
    if (who.kind === 'inventory') {
      const h = hostByName.get(who.name)!;
      [name, original, address] = [h.name, h.name, h.address];
      c = lookup([h.name, h.address]);
      passphraseEnv = h.ssh?.passphraseEnv ?? inv.ssh.passphraseEnv;
      before = [inventoryLayer(h.ssh), inventoryLayer(inv.ssh)];
      const jump = h.ssh?.jump ?? inv.ssh.jump;
      if (jump !== undefined) inventoryJump = h.ssh?.jump === undefined && jump === h.name ? null : jump;
    } else {
      const s = who.spec;
      [name, original, address] = [key, s.host, s.host];
      c = lookup([s.host]);
      passphraseEnv = inv.ssh.passphraseEnv;
      before = [{ ...(s.user ? { user: s.user } : {}), ...(s.port ? { port: s.port } : {}) }];
      after = [inventoryLayer(inv.ssh)];
    }
    if (c.hostName) {
      const hn = c.hostName;
      address = hn.value.replace(/%(.?)/g, (_m, ch: string) => {
        if (ch === '%') return '%';
        if (ch === 'h') return original;
        throw new InputError(`${at(hn)}: HostName: only %h and %% are expanded, not %${ch}`);
      });
    }
    const plain = [...before, configPlain(c), ...after];
    const user = pick(plain, 'user') ?? 'root';
    const port = pick(plain, 'port') ?? 22;
    const jumpText = via ? via.name : (c.proxyJump?.text ?? '');
    const tokens: TokenValues = { host: address, original, port, user, jump: jumpText, home: local.home, localUser: local.user, uid: local.uid, localHost: local.hostname };
    const layers = [...before, { ...configPlain(c), ...configPaths(c, tokens) }, ...after];

    const out: SshHostConfig = { name, address, port, user, connectTimeoutSec: pick(layers, 'connectTimeoutSec') ?? DEFAULT_CONNECT_TIMEOUT_SEC };
    const identityFile = pick(layers, 'identityFile');
    if (identityFile) out.identityFile = identityFile;
    // Agent: the first layer that names a socket or says "no agent".
    const agentLayer = layers.find((l) => l.noAgent || l.agent !== undefined);
    if (agentLayer?.agent) out.agent = agentLayer.agent;
    if (passphraseEnv) {
      const passphrase = env[passphraseEnv];
      if (!passphrase) throw new InputError(`ssh.passphraseEnv names ${passphraseEnv}, which is not set`);
      out.passphrase = new Secret(passphrase);
    }
    if (c.proxyCommand && !c.proxyJump && inventoryJump === undefined && !via) {
      note(`${at(c.proxyCommand)}: ProxyCommand is not used by airflow-ha (host ${name} is connected to directly; ProxyJump is read)`);
    }

    // The jump, by precedence: the one a ProxyJump chain imposes, the inventory's, ssh_config's.
    if (via) out.jump = via;
    else if (typeof inventoryJump === 'string') {
      const j = inventoryJump;
      out.jump = resolve(hostByName.has(j) ? { kind: 'inventory', name: j } : { kind: 'other', spec: parseInventoryJump(j) }, edge('inventory ssh.jump'));
    } else if (inventoryJump === undefined && c.proxyJump && c.proxyJump.value !== 'none') {
      const hops = c.proxyJump.value as JumpSpec[];
      const why = `ProxyJump ${c.proxyJump.text}, ${at(c.proxyJump)}`;
      // a,b: b is the host's jump, a is b's; a is reached with its own settings.
      let prev: SshHostConfig | undefined;
      hops.forEach((spec, i) => {
        const later = hops.slice(i + 1).reverse().map((s) => ({ key: keyOf(hop(s)), why }));
        prev = resolve(hop(spec), [...edge(why), ...later], prev);
      });
      if (prev) out.jump = prev;
    }
    return out;
  };

  const hosts = new Map(inv.hosts.map((h) => [h.name, resolve({ kind: 'inventory', name: h.name }, [])]));
  return { hosts, notes };
}

/**
 * Reads the operator's ssh_config for `flags.sshConfig`: `none` reads nothing; a given file must
 * exist; by default `~/.ssh/config` when it exists.
 * @throws InputError when a given file cannot be read or does not parse (file and line named).
 */
export async function readSshConfig(flags: SshFlags, cwd: string, home: string): Promise<ParsedSshConfig | null> {
  if (flags.sshConfig === 'none') return null;
  const file = flags.sshConfig ? path.resolve(cwd, flags.sshConfig.replace(/^~(?=\/|$)/, home)) : path.join(home, '.ssh', 'config');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (!flags.sshConfig && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InputError(`cannot read the SSH client configuration ${file} (${flags.sshConfig ? '-F/--ssh-config' : 'the default'}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseSshConfig(text, file);
}

/** What this machine is, for the ssh_config tokens (reads the OS: cli only). */
export function localFacts(cwd: string, env: NodeJS.ProcessEnv): LocalFacts {
  const info = os.userInfo();
  return { home: env['HOME'] || os.homedir(), user: env['USER'] || info.username, uid: info.uid, hostname: os.hostname(), cwd };
}

/** Where the CLI's notes and the environment come from. */
export interface TransportIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  err: (text: string) => void;
}

/**
 * The real SSH transport for an inventory: the settings of {@link resolveSshHosts} (inventory over
 * the operator's ssh_config, see there), key passphrases from the environment variable the
 * inventory names, known_hosts in the inventory's state folder (plus `--known-hosts FILE`, read
 * only). Notes on ssh_config options not used go to `io.err`, one line each.
 * `pool` overrides pool settings (e.g. `retries: 0` for `status`, which must answer in seconds).
 * @throws InputError for an unreadable or bad ssh_config, a `--known-hosts` file that cannot be read,
 *   or a setting {@link resolveSshHosts} refuses.
 */
export async function buildTransport(
  loaded: LoadedInventory,
  io: TransportIo,
  flags: SshFlags,
  pool: Partial<Pick<SshPoolOptions, 'retries' | 'keepaliveIntervalSec'>> = {},
): Promise<SshPool> {
  const local = localFacts(io.cwd, io.env);
  const sshConfig = await readSshConfig(flags, io.cwd, local.home);
  const { hosts, notes } = resolveSshHosts({ inventory: loaded.inventory, dir: loaded.dir, sshConfig, env: io.env, local });
  for (const n of notes) io.err(`note: ${n}\n`);
  const trusted: string[] = [];
  if (flags.knownHosts) {
    const file = path.resolve(io.cwd, flags.knownHosts.replace(/^~(?=\/|$)/, local.home));
    try {
      await readFile(file);
    } catch (e) {
      throw new InputError(`cannot read --known-hosts ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    trusted.push(file);
  }
  return new SshPool({
    hosts,
    knownHostsFile: path.join(loaded.stateDir, 'known_hosts'),
    trustedKnownHostsFiles: trusted,
    acceptNewHostKeys: Boolean(flags.acceptNewHostKeys),
    ...pool,
  });
}

/** The Transport type, for callers that only need the interface. */
export type { Transport };
