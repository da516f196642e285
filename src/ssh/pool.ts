/**
 * The SSH transport: one ssh2 connection per host for the whole run, host keys checked against the
 * inventory's known_hosts file, commands run as root (`sh -c`, through `sudo -n` for other users),
 * files written atomically over SFTP.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client as Ssh2Client, ClientChannel, ConnectConfig, SFTPWrapper, ServerHostKeyAlgorithm } from 'ssh2';
import { sh, type Cmd } from '../core/cmd.js';
import { InputError, UnreachableError } from '../core/errors.js';
import { privateDirCmd } from '../core/private-dir.js';
import type { Secret } from '../core/secret.js';
import {
  checkHostKey,
  formatKey,
  hostKeyAlgorithmsFor,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  serverHostKeyPath,
  type HostKeyCheck,
  type KnownHostEntry,
} from './hostkeys.js';
import { KnownHostsStore } from './known-hosts-store.js';
import type { Connection, ExecOptions, ExecResult, PutOptions, Transport } from './transport.js';

const { Client, utils } = ssh2;

/** How to reach one host over SSH (already resolved from the inventory: defaults applied, `~` may remain). */
export interface SshHostConfig {
  /** Inventory host name (used in messages and as the pool key). */
  name: string;
  /** Address to connect to (as seen from the jump host, when there is one). */
  address: string;
  /** TCP port of sshd. */
  port: number;
  /** Login user; anything but `root` runs commands through `sudo -n`. */
  user: string;
  /** Private key file (OpenSSH, PEM or PPK); `~/` is expanded. */
  identityFile?: string;
  /** Passphrase of `identityFile`. */
  passphrase?: Secret;
  /** Path of an ssh-agent socket (e.g. $SSH_AUTH_SOCK). */
  agent?: string;
  /** Connect through this host: an SSH connection to it, then a `direct-tcpip` channel (RFC 4254 §7.2). */
  jump?: SshHostConfig;
  /** Seconds for TCP connect + SSH handshake + authentication (ssh2 `readyTimeout`). */
  connectTimeoutSec: number;
}

/** Something that happened in the pool, for logs (`onEvent`). */
export type SshPoolEvent =
  | { kind: 'attempt'; host: string; address: string; attempt: number }
  | { kind: 'retry'; host: string; address: string; attempt: number; delayMs: number; reason: string }
  | { kind: 'connected'; host: string; address: string; user: string; via?: string }
  | { kind: 'host-key-recorded'; host: string; address: string; name: string; key: string; file: string; line: number }
  | { kind: 'lost'; host: string; address: string; reason: string };

/** Settings of an {@link SshPool}. */
/**
 * Connection starts in flight at once. A cap keeps bursts below what sshd's MaxStartups (default
 * 10:30:100, sshd_config(5)) and small bastions accept (Kamal hit resets past ~15, kamal#326);
 * 13 lets the 13-VM reference layout connect in one wave.
 */
export const DEFAULT_MAX_CONCURRENT_STARTS = 13;

/** Where uploads are staged on a host (see {@link SshPoolOptions.stageDir}). */
export const DEFAULT_STAGE_DIR = '/var/lib/airflow-ha/stage';

export interface SshPoolOptions {
  /** SSH settings by inventory host name. */
  hosts: Map<string, SshHostConfig>;
  /** The known_hosts file (OpenSSH format), kept with the inventory, e.g. `inventory/lab.state/known_hosts`. */
  knownHostsFile: string;
  /**
   * More known_hosts files to trust (e.g. the operator's `~/.ssh/known_hosts`, `--known-hosts`):
   * read on every connection, never written. A key is accepted when some file knows it and no file
   * has a changed or `@revoked` entry for the host.
   */
  trustedKnownHostsFiles?: readonly string[];
  /** Trust on first use: record unknown host keys in `knownHostsFile` (a changed key is refused regardless). */
  acceptNewHostKeys: boolean;
  /** At most this many connections handshaking at once. Default {@link DEFAULT_MAX_CONCURRENT_STARTS}. */
  maxConcurrentStarts?: number;
  /** Seconds between SSH keepalives; 3 unanswered ones drop the connection. Default 15. */
  keepaliveIntervalSec?: number;
  /** Extra connection attempts after a network error (refused, timeout, unreachable, reset). Default 2. */
  retries?: number;
  /** Delay before the first retry, doubled for each further one (±20% jitter). Default 1. */
  retryBaseDelaySec?: number;
  /** Directory a non-root login user can write, for uploads before `sudo install`. Default `/tmp`. */
  userTempDir?: string;
  /**
   * Root-only folder on each host (mode 0700, created by the first put) where an upload gets its
   * owner and mode before it moves into place. Default {@link DEFAULT_STAGE_DIR}.
   */
  stageDir?: string;
  /** Called for each {@link SshPoolEvent}; exceptions thrown by it are ignored. */
  onEvent?: (e: SshPoolEvent) => void;
}

/**
 * The connection to a host went away (socket closed, keepalive timeout, jump host lost) while
 * something was under way. Not an {@link UnreachableError}: the host was reached; the runner turns
 * this into a task failure.
 */
export class ConnectionLostError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
    readonly during: string,
    readonly detail?: string,
  ) {
    super(`connection to host ${host} (${address}) was lost while ${during}${detail ? ` (${detail})` : ''}`);
    this.name = 'ConnectionLostError';
  }
}

/**
 * The login user cannot become root without a password (or is not allowed to at all).
 * An {@link UnreachableError} (exit code 3): nothing can be done on that host.
 */
export class SudoRefusedError extends UnreachableError {
  constructor(host: string, address: string, user: string, kind: 'password' | 'not-allowed', sudoSaid: string) {
    const reason =
      kind === 'password'
        ? `user ${user} on host ${host} needs passwordless sudo (NOPASSWD) for airflow-ha (sudo -n said: ${JSON.stringify(sudoSaid)}); e.g. add "${user} ALL=(ALL) NOPASSWD: ALL" to /etc/sudoers.d/airflow-ha, or log in as root`
        : `user ${user} on host ${host} may not use sudo (sudo -n said: ${JSON.stringify(sudoSaid)}); airflow-ha needs root: log in as root or grant "${user} ALL=(ALL) NOPASSWD: ALL"`;
    super(host, address, reason);
    this.message = `host ${host} (${address}): ${reason}`;
  }
}

/**
 * Whether `stderr` of a `sudo -n …` command that exited 1 is sudo refusing to run it:
 * `password` when sudo wants a password or a terminal, `not-allowed` when the user is not in sudoers,
 * null otherwise (the command itself failed).
 */
export function sudoRefusal(stderr: string): { kind: 'password' | 'not-allowed'; line: string } | null {
  const pw = /^sudo: (?:a password is required|a terminal is required|sorry, you must have a tty|no tty present).*$/m.exec(stderr);
  if (pw) return { kind: 'password', line: pw[0].trim() };
  const na = /^(?:sudo: )?\S+ is not (?:in the sudoers file|allowed to run sudo).*$/m.exec(stderr);
  if (na) return { kind: 'not-allowed', line: na[0].trim() };
  return null;
}

/** An open connection to a jump host, with its settings. @internal */
interface JumpClient {
  client: Ssh2Client;
  cfg: SshHostConfig;
}

/** A connection failure with a readable reason and whether trying again could help. @internal */
class DialError extends Error {
  constructor(
    readonly reason: string,
    readonly retryable: boolean,
  ) {
    super(reason);
  }
}

const DEFAULT_HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** A counting semaphore: at most `n` holders at once, FIFO. */
class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];
  constructor(n: number) {
    this.#free = Math.max(1, Math.floor(n));
  }
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiters.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? posix.join(homedir(), p.slice(2)) : p;
}

function errCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function errLevel(e: unknown): string | undefined {
  const l = (e as { level?: unknown } | null)?.level;
  return typeof l === 'string' ? l : undefined;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Turns an ssh2/socket error during connection setup into a reason and a retry decision. */
function classify(e: unknown, cfg: SshHostConfig): DialError {
  if (e instanceof DialError) return e;
  const code = errCode(e);
  const level = errLevel(e);
  const msg = errMessage(e);
  const where = `${cfg.address}:${cfg.port}`;
  switch (code) {
    case 'ECONNREFUSED':
      return new DialError(`connection refused by ${where} (ECONNREFUSED): is sshd running and listening on port ${cfg.port}?`, true);
    case 'ETIMEDOUT':
      return new DialError(`no answer from ${where} (ETIMEDOUT, timeout)`, true);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return new DialError(`no route to ${cfg.address} (${code})`, true);
    case 'ECONNRESET':
    case 'EPIPE':
      return new DialError(`the connection to ${where} was reset before SSH was ready (${code})`, true);
    case 'EAI_AGAIN':
      return new DialError(`cannot resolve ${cfg.address} right now (EAI_AGAIN)`, true);
    case 'ENOTFOUND':
      return new DialError(`cannot resolve ${cfg.address} (ENOTFOUND)`, false);
  }
  if (level === 'client-timeout' || /timed out/i.test(msg)) {
    return new DialError(`no SSH handshake from ${where} within ${cfg.connectTimeoutSec} s (timeout)`, true);
  }
  if (/Connection lost before handshake|closed before it was ready/i.test(msg)) {
    return new DialError(`the connection to ${where} closed before SSH was ready (connection lost)`, true);
  }
  if (level === 'client-authentication' || /authentication methods failed/i.test(msg)) {
    const tried = [cfg.identityFile ? `key ${cfg.identityFile}` : '', cfg.agent ? `agent ${cfg.agent}` : ''].filter(Boolean).join(', ');
    return new DialError(
      `authentication as ${cfg.user} failed (${msg}); tried: ${tried || 'nothing — no identity file or agent is configured'}`,
      false,
    );
  }
  if (level === 'handshake' || level === 'protocol') {
    return new DialError(`SSH handshake with ${where} failed: ${msg}`, false);
  }
  return new DialError(`${msg}${code ? ` (${code})` : ''}`, false);
}

/** RFC 4254 §5.1 reason codes of SSH_MSG_CHANNEL_OPEN_FAILURE. */
const OPEN_FAILURE: Record<number, string> = {
  1: 'administratively prohibited',
  2: 'connect failed',
  3: 'unknown channel type',
  4: 'resource shortage',
};

/** Opens a `direct-tcpip` channel through the jump host `via` to address:port, within `timeoutMs`. */
function forwardOut(via: JumpClient, cfg: SshHostConfig, timeoutMs: number): Promise<ClientChannel> {
  const jumpName = `jump host ${via.cfg.name} (${via.cfg.address})`;
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new DialError(`the ${jumpName} opened no tunnel to ${cfg.address}:${cfg.port} within ${cfg.connectTimeoutSec} s (timeout)`, true));
    }, timeoutMs);
    try {
      via.client.forwardOut('127.0.0.1', 0, cfg.address, cfg.port, (err, ch) => {
        clearTimeout(timer);
        if (done) {
          if (!err) ch.close();
          return;
        }
        done = true;
        if (err) {
          const code = (err as { reason?: unknown }).reason;
          const what = typeof code === 'number' ? (OPEN_FAILURE[code] ?? `reason ${code}`) : 'failed';
          const desc = err.message.replace(/^\(SSH\) Channel open failure:\s*/, '').trim();
          reject(
            new DialError(
              `the ${jumpName} could not open a TCP connection to ${cfg.address}:${cfg.port}: ${what}${desc ? ` (${desc})` : ''}`,
              code === 2 || code === 4 || code === undefined,
            ),
          );
        } else resolve(ch);
      });
    } catch (e) {
      clearTimeout(timer);
      done = true;
      reject(new DialError(`the connection to the ${jumpName} is gone: ${errMessage(e)}`, true));
    }
  });
}

/** Clients whose socket has closed (ssh2 has no public flag for it). */
const closedClients = new WeakSet<Ssh2Client>();

/** Ends a client gracefully, destroying it if it has not closed within `ms`. */
function endClient(client: Ssh2Client, ms = 2000): Promise<void> {
  return new Promise((resolve) => {
    if (closedClients.has(client)) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      client.end();
    } catch {
      client.destroy();
    }
  });
}

/**
 * {@link Transport} over SSH (ssh2). One connection per inventory host for the whole run, opened on
 * first {@link connect}; at most `maxConcurrentStarts` handshakes at once; network errors are retried
 * with exponential backoff, host-key and authentication refusals never are.
 *
 * Host keys are checked against `knownHostsFile` (man sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT") under
 * the name `address` (port 22) or `[address]:port`: an unknown key is refused unless
 * `acceptNewHostKeys`, when it is recorded; a changed or `@revoked` key is always refused. Never prompts.
 */
export class SshPool implements Transport {
  readonly #opts: SshPoolOptions;
  readonly #store: KnownHostsStore;
  readonly #trusted: readonly KnownHostsStore[];
  readonly #sem: Semaphore;
  readonly #conns = new Map<string, Promise<SshConnection>>();
  readonly #jumps = new Map<string, Promise<JumpClient>>();
  readonly #clients = new Set<Ssh2Client>();
  readonly #keys = new Map<string, Promise<Buffer>>();
  #closed = false;

  constructor(opts: SshPoolOptions) {
    this.#opts = opts;
    this.#store = new KnownHostsStore(opts.knownHostsFile);
    this.#trusted = (opts.trustedKnownHostsFiles ?? []).map((f) => new KnownHostsStore(f));
    this.#sem = new Semaphore(opts.maxConcurrentStarts ?? DEFAULT_MAX_CONCURRENT_STARTS);
  }

  /**
   * The connection to `host` (inventory name). Concurrent and later calls share one connection
   * (and one opening attempt while it is under way); after a failed open, or once an open connection
   * was lost (e.g. a reboot), the next call opens a new one.
   * @throws UnreachableError (exit code 3) when the host cannot be reached, its host key is unknown
   *   or changed, authentication fails, or the user cannot `sudo -n`; InputError when the identity
   *   file cannot be read or decrypted; Error when `host` has no SSH settings or the pool is closed.
   */
  connect(host: string): Promise<SshConnection> {
    return this.#connection(host);
  }

  #connection(host: string): Promise<SshConnection> {
    if (this.#closed) return Promise.reject(new Error('the SSH pool is closed'));
    let p = this.#conns.get(host);
    if (!p) {
      const opening = this.#open(host);
      p = opening;
      this.#conns.set(host, opening);
      // Callers get the rejection; forget the failure so a later connect() tries again.
      opening.catch(() => {
        if (this.#conns.get(host) === opening) this.#conns.delete(host);
      });
    }
    return p;
  }

  /** Ends every connection (and jump-host connection), waiting up to 2 s for each to close. */
  async close(): Promise<void> {
    this.#closed = true;
    const conns = await Promise.allSettled([...this.#conns.values()]);
    await Promise.all(conns.map((r) => (r.status === 'fulfilled' ? r.value.end() : undefined)));
    await Promise.all([...this.#clients].map((c) => endClient(c)));
    this.#conns.clear();
    this.#jumps.clear();
  }

  #emit(e: SshPoolEvent): void {
    try {
      this.#opts.onEvent?.(e);
    } catch {
      // a logger's problem must not break connections
    }
  }

  #config(host: string): SshHostConfig {
    const cfg = this.#opts.hosts.get(host);
    if (!cfg) throw new Error(`no SSH settings for host ${host}`);
    return cfg;
  }

  /** Reads and checks the identity file once per (path, passphrase). */
  #privateKey(cfg: SshHostConfig): Promise<Buffer> | undefined {
    if (!cfg.identityFile) return undefined;
    const file = expandHome(cfg.identityFile);
    const cacheKey = `${file}\0${cfg.passphrase ? cfg.passphrase.reveal() : ''}`;
    let p = this.#keys.get(cacheKey);
    if (!p) {
      p = (async () => {
        let data: Buffer;
        try {
          data = await readFile(file);
        } catch (e) {
          throw new InputError(`host ${cfg.name}: cannot read SSH identity file ${file}: ${errCode(e) ?? errMessage(e)}`);
        }
        const parsed = utils.parseKey(data, cfg.passphrase?.reveal());
        if (parsed instanceof Error) {
          const hint = cfg.passphrase ? '' : ' (if the key is encrypted, give its passphrase with ssh.passphraseEnv)';
          throw new InputError(`host ${cfg.name}: cannot use SSH identity file ${file}: ${parsed.message}${hint}`);
        }
        return data;
      })();
      this.#keys.set(cacheKey, p);
    }
    return p;
  }

  async #open(host: string): Promise<SshConnection> {
    const cfg = this.#config(host);
    const retries = Math.max(0, this.#opts.retries ?? 2);
    const baseMs = Math.max(0, this.#opts.retryBaseDelaySec ?? 1) * 1000;
    let client: Ssh2Client | undefined;
    for (let attempt = 1; client === undefined; attempt++) {
      if (this.#closed) throw new UnreachableError(host, cfg.address, 'the SSH pool was closed');
      this.#emit({ kind: 'attempt', host, address: cfg.address, attempt });
      const release = await this.#sem.acquire();
      let failure: DialError | undefined;
      try {
        const via = cfg.jump ? await this.#jumpClient(cfg.jump) : undefined;
        client = await this.#dial(cfg, via);
      } catch (e) {
        if (e instanceof InputError) throw e;
        failure = classify(e, cfg);
      } finally {
        release();
      }
      if (failure) {
        if (!failure.retryable || attempt > retries) {
          const tail = attempt > 1 ? ` (gave up after ${attempt} attempts)` : '';
          throw new UnreachableError(host, cfg.address, `${failure.reason}${tail}`);
        }
        const delayMs = Math.round(baseMs * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4));
        this.#emit({ kind: 'retry', host, address: cfg.address, attempt, delayMs, reason: failure.reason });
        await sleep(delayMs);
      }
    }
    const conn = new SshConnection(cfg, client, {
      userTempDir: this.#opts.userTempDir ?? '/tmp',
      stageDir: this.#opts.stageDir ?? DEFAULT_STAGE_DIR,
      onLost: (reason) => {
        this.#emit({ kind: 'lost', host, address: cfg.address, reason });
        // Forget it so the next connect() reopens (e.g. after a reboot); only if it is still ours.
        void this.#conns.get(host)?.then((c) => {
          if (c === conn) this.#conns.delete(host);
        }, () => undefined);
      },
    });
    if (this.#closed) {
      await conn.end();
      throw new UnreachableError(host, cfg.address, 'the SSH pool was closed');
    }
    if (cfg.user !== 'root') {
      try {
        await conn.checkSudo();
      } catch (e) {
        await conn.end();
        throw e;
      }
    }
    this.#emit({ kind: 'connected', host, address: cfg.address, user: cfg.user, ...(cfg.jump ? { via: cfg.jump.name } : {}) });
    return conn;
  }

  /** The (shared) connection to a jump host; failures are prefixed with the jump host's name. */
  #jumpClient(jump: SshHostConfig): Promise<JumpClient> {
    const key = `${jump.name}|${jump.user}@${jump.address}:${jump.port}`;
    let p = this.#jumps.get(key);
    if (!p) {
      p = (async () => {
        try {
          const via = jump.jump ? await this.#jumpClient(jump.jump) : undefined;
          const c = await this.#dial(jump, via);
          c.once('close', () => {
            if (this.#jumps.get(key) === p) this.#jumps.delete(key);
          });
          return { client: c, cfg: jump };
        } catch (e) {
          if (this.#jumps.get(key) === p) this.#jumps.delete(key);
          if (e instanceof InputError) throw e;
          const f = classify(e, jump);
          throw new DialError(`via jump host ${jump.name} (${jump.address}): ${f.reason}`, f.retryable);
        }
      })();
      this.#jumps.set(key, p);
    }
    return p;
  }

  /**
   * One connection attempt: TCP (or a tunnel through `via`), handshake with host-key check,
   * authentication; records an accepted new host key once authenticated.
   * @throws DialError or a raw ssh2/socket error (see {@link classify}); InputError for key problems.
   */
  async #dial(cfg: SshHostConfig, via: JumpClient | undefined): Promise<Ssh2Client> {
    const name = knownHostsName(cfg.address, cfg.port);
    const file = this.#opts.knownHostsFile;
    const stores = [this.#store, ...this.#trusted];
    /** Every known_hosts file, parsed afresh; @throws DialError naming the file that cannot be read. */
    const readAll = async (): Promise<{ file: string; entries: KnownHostEntry[] }[]> =>
      Promise.all(
        stores.map(async (st) => {
          try {
            return { file: st.file, entries: (await st.read()).entries };
          } catch (e) {
            throw new DialError(`cannot read the known_hosts file ${st.file}: ${errCode(e) ?? errMessage(e)}`, false);
          }
        }),
      );
    const preferred = hostKeyAlgorithmsFor(knownKeyTypes((await readAll()).flatMap((f) => f.entries), name)) as ServerHostKeyAlgorithm[];
    const privateKey = await this.#privateKey(cfg);
    const timeoutMs = Math.max(1, cfg.connectTimeoutSec * 1000);
    const sock: Readable | undefined = via ? await forwardOut(via, cfg, timeoutMs) : undefined;

    const client = new Client();
    this.#clients.add(client);
    client.once('close', () => {
      closedClients.add(client);
      this.#clients.delete(client);
    });
    let refusal: DialError | undefined;
    let toRecord: Buffer | undefined;

    const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
      readAll().then(
        (files) => {
          // Each file on its own: a changed or revoked entry in any of them refuses the key.
          const checks = files.map((f) => ({ file: f.file, check: checkHostKey(f.entries, name, key) }));
          const bad = checks.find((c) => c.check.status === 'revoked') ?? checks.find((c) => c.check.status === 'changed');
          if (bad) {
            refusal = new DialError(hostKeyRefusal(bad.check, name, key, bad.file), false);
            return verify(false);
          }
          if (checks.some((c) => c.check.status === 'known')) return verify(true);
          if (this.#opts.acceptNewHostKeys) {
            toRecord = key;
            return verify(true);
          }
          const where = checks.map((c) => c.file).join(', ');
          refusal = new DialError(hostKeyRefusal({ status: 'unknown' }, name, key, where), false);
          verify(false);
        },
        (e: unknown) => {
          refusal = e instanceof DialError ? e : new DialError(`cannot read the known_hosts files: ${errMessage(e)}`, false);
          verify(false);
        },
      );
    };

    const config: ConnectConfig = {
      host: cfg.address,
      port: cfg.port,
      username: cfg.user,
      readyTimeout: timeoutMs,
      keepaliveInterval: (this.#opts.keepaliveIntervalSec ?? 15) * 1000,
      keepaliveCountMax: 3,
      hostVerifier,
    };
    if (sock) config.sock = sock;
    if (privateKey) config.privateKey = privateKey;
    if (privateKey && cfg.passphrase) config.passphrase = cfg.passphrase.reveal();
    if (cfg.agent) config.agent = cfg.agent;
    if (preferred.length > 0) {
      config.algorithms = {
        serverHostKey: [...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))],
      };
    }

    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown): void => {
        if (settled) return;
        settled = true;
        client.destroy();
        reject(refusal ?? e);
      };
      client.on('error', fail);
      client.once('close', () => fail(new Error('the connection closed before it was ready')));
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        client.removeListener('error', fail);
        resolve();
      });
      try {
        client.connect(config);
      } catch (e) {
        fail(e);
      }
    });
    // From here on the connection's owner listens for errors; keep one listener so an 'error'
    // between now and then cannot crash the process.
    client.on('error', () => undefined);

    if (toRecord) {
      try {
        const out = await this.#store.record(name, toRecord, `airflow-ha:${cfg.name}`);
        if (out.recorded) {
          this.#emit({ kind: 'host-key-recorded', host: cfg.name, address: cfg.address, name, key: formatKey(toRecord), file, line: out.line });
        } else if (out.check.status !== 'known') {
          throw new DialError(hostKeyRefusal(out.check, name, toRecord, file), false);
        }
      } catch (e) {
        client.destroy();
        if (e instanceof DialError) throw e;
        throw new DialError(`cannot record the host key in ${file}: ${errCode(e) ?? errMessage(e)}`, false);
      }
    }
    return client;
  }
}

/** The reason shown when a host key is refused (unknown without trust-on-first-use, changed, revoked). */
function hostKeyRefusal(check: HostKeyCheck, name: string, key: Buffer, file: string): string {
  const offered = formatKey(key);
  switch (check.status) {
    case 'unknown':
      return (
        `unknown SSH host key ${offered} for ${name} (not in ${file}); ` +
        `check it against the host (ssh-keygen -lf ${serverHostKeyPath(keyTypeOf(key) ?? '')}) ` +
        `and re-run with --accept-new-host-keys to trust it on first use`
      );
    case 'changed': {
      const known = check.known.map((e) => `${formatKey(e.key)} at ${file}:${e.line}`).join('; ');
      return (
        `SSH HOST KEY CHANGED for ${name}: known ${known}; offered ${offered}. ` +
        `Refused even with --accept-new-host-keys (a reinstalled host, or someone in the middle). ` +
        `If the change is expected, remove the old entry (ssh-keygen -R '${name}' -f ${file}) and re-run with --accept-new-host-keys`
      );
    }
    case 'revoked':
      return `SSH host key ${offered} for ${name} is marked @revoked at ${file}:${check.entry.line}; refused`;
    case 'known':
      return `SSH host key ${offered} for ${name} is known`;
  }
}

/** An interactive session of {@link SshConnection.session}. */
export interface SessionOptions {
  /** The command line as typed (the login user's shell runs it); none: a login shell. */
  command?: string;
  /** A pseudo-terminal: `TERM`, and the window in characters. */
  pty?: { term: string; rows: number; cols: number };
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Receives the function that forwards a new window size (rows, columns). */
  onResize?: (resize: (rows: number, cols: number) => void) => void;
}

/** @internal options from the pool to a connection. */
interface SshConnectionOptions {
  userTempDir: string;
  stageDir: string;
  onLost: (reason: string) => void;
}

/** Tail of a message appended to stderr by this module (so the cause shows in task failures). */
function note(stderr: string, text: string): string {
  return `${stderr}${stderr === '' || stderr.endsWith('\n') ? '' : '\n'}airflow-ha: ${text}\n`;
}

/**
 * One authenticated SSH connection ({@link Connection}). Created by {@link SshPool}; commands run
 * with `sh -c` as root (`sudo -n sh -c` when the login user is not root); uploads go over one lazily
 * opened SFTP session.
 */
/**
 * What runs a command sent on stdin (see {@link SshConnection.exec}): read all of stdin (a `.` after
 * it keeps its trailing newlines, which command substitution would drop), then `eval` it in this
 * shell, the variable unset first. POSIX.1-2017 XCU 2.6.3 (command substitution), 2.14 (eval).
 */
export const STDIN_SCRIPT = '__ah_script=$(cat; echo .); eval "unset __ah_script; ${__ah_script%.}"';

/**
 * The command that moves a staged upload into place: owner and mode set in the root-only stage
 * (`chown -h`), then `mv` to the random temp name `tmp` beside `path` and a rename onto `path`;
 * on failure both temp files are removed. See {@link SshConnection.put}.
 */
export function putFromStageCmd(staged: string, tmp: string, path: string, opts: PutOptions): Cmd {
  return sh`{ chown -h -- ${`${opts.owner}:${opts.group}`} ${staged} && chmod -- ${opts.mode} ${staged} && mv -fT -- ${staged} ${tmp} && mv -fT -- ${tmp} ${path}; } || { rc=$?; rm -f -- ${staged} ${tmp}; exit "$rc"; }`;
}

export class SshConnection implements Connection {
  readonly host: string;
  readonly address: string;
  readonly user: string;
  readonly #client: Ssh2Client;
  readonly #opts: SshConnectionOptions;
  readonly #lostHandlers = new Set<() => void>();
  #lost: string | null = null;
  #ending = false;
  #sftp: Promise<SFTPWrapper> | undefined;
  #stage: Promise<void> | undefined;

  constructor(cfg: SshHostConfig, client: Ssh2Client, opts: SshConnectionOptions) {
    this.host = cfg.name;
    this.address = cfg.address;
    this.user = cfg.user;
    this.#client = client;
    this.#opts = opts;
    client.on('error', (e: Error) => this.#markLost(e.message));
    client.on('end', () => this.#markLost('closed by the remote side'));
    client.on('close', () => this.#markLost('closed'));
  }

  /** False once the connection has closed or failed. */
  get alive(): boolean {
    return this.#lost === null;
  }

  #markLost(reason: string): void {
    if (this.#lost !== null) return;
    this.#lost = this.#ending ? 'closed by airflow-ha' : reason;
    this.#sftp = undefined;
    const handlers = [...this.#lostHandlers];
    this.#lostHandlers.clear();
    for (const h of handlers) h();
    this.#opts.onLost(this.#lost);
  }

  #lostError(during: string): ConnectionLostError {
    return new ConnectionLostError(this.host, this.address, during, this.#lost ?? undefined);
  }

  /**
   * Runs `cmd` as root with `sh -c` (as `sudo -n sh -c WORD` when the login user is not root) and
   * collects stdout/stderr (UTF-8) and the exit code. `code` is null when the command ended without
   * an exit status (killed by a signal — noted at the end of stderr) or was abandoned after
   * `timeoutSec` (also noted).
   *
   * A command that carries a {@link Secret} (and has no stdin of its own) goes in on stdin instead:
   * {@link STDIN_SCRIPT} reads it whole, then runs it in that shell, its stdin then at EOF as with
   * any command here. sshd starts the login shell with `-c COMMAND`, and any local user can
   * read a process's argv (/proc/PID/cmdline, ps(1)) while it runs; stdin is not visible there.
   * @throws ConnectionLostError when the connection drops before the command finished;
   *   SudoRefusedError when sudo wants a password or refuses the user.
   */
  async exec(cmd: Cmd, opts: ExecOptions = {}): Promise<ExecResult> {
    const root = this.user === 'root';
    const viaStdin = opts.stdin === undefined && cmd.secrets().length > 0;
    const body = viaStdin ? sh`sh -c ${STDIN_SCRIPT}` : sh`sh -c ${cmd.asWord()}`;
    const wrapped = root ? body : sh`sudo -n ${body}`;
    const res = await this.#run(wrapped.render(), viaStdin ? { ...opts, stdin: cmd.render() } : opts, 'running a command');
    if (!root && res.code === 1) {
      const r = sudoRefusal(res.stderr);
      if (r) throw new SudoRefusedError(this.host, this.address, this.user, r.kind, r.line);
    }
    return res;
  }

  /**
   * @internal Checks once, right after login, that a non-root user can `sudo -n`.
   * @throws SudoRefusedError, or UnreachableError when sudo is missing or fails otherwise.
   */
  async checkSudo(): Promise<void> {
    const res = await this.exec(sh`true`);
    if (res.code !== 0) {
      const said = res.stderr.trim().split('\n').slice(-3).join(' / ');
      const missing = res.code === 127 ? 'sudo is not installed, and ' : '';
      throw new UnreachableError(
        this.host,
        this.address,
        `${missing}user ${this.user} cannot run commands as root with "sudo -n" (exit code ${res.code ?? 'none'}: ${said || 'no message'})`,
      );
    }
  }

  /** Runs an already-rendered command line over an exec channel. */
  #run(command: string, opts: ExecOptions, during: string): Promise<ExecResult> {
    if (this.#lost !== null) return Promise.reject(this.#lostError(during));
    return new Promise<ExecResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      let channel: ClientChannel | undefined;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        settled = true;
        if (timer) clearTimeout(timer);
        this.#lostHandlers.delete(onLost);
      };
      const texts = (): { stdout: string; stderr: string } => ({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
      const onLost = (): void => {
        if (settled) return;
        finish();
        reject(this.#lostError(during));
      };
      this.#lostHandlers.add(onLost);

      const complete = (): void => {
        // Let a connection loss that closed this channel be seen first.
        setImmediate(() => {
          if (settled) return;
          if (this.#lost !== null && code === null && signal === undefined) return onLost();
          finish();
          const t = texts();
          resolve({ code, stdout: t.stdout, stderr: signal ? note(t.stderr, `the command was killed by signal ${signal}`) : t.stderr });
        });
      };

      if (opts.timeoutSec !== undefined && opts.timeoutSec > 0) {
        const sec = opts.timeoutSec;
        timer = setTimeout(() => {
          if (settled) return;
          finish();
          try {
            channel?.signal('KILL');
          } catch {
            // not every server honours signals; closing the channel is what counts
          }
          try {
            channel?.close();
          } catch {
            // already closed
          }
          const t = texts();
          resolve({ code: null, stdout: t.stdout, stderr: note(t.stderr, `the command was abandoned after ${sec} s (timeout)`) });
        }, sec * 1000);
      }

      try {
        this.#client.exec(command, (e, ch) => {
          if (e) {
            if (settled) return;
            if (this.#lost !== null) return onLost();
            finish();
            reject(new Error(`host ${this.host} (${this.address}): cannot start a command: ${e.message}`));
            return;
          }
          if (settled) {
            ch.close();
            return;
          }
          channel = ch;
          ch.on('data', (d: Buffer) => {
            out.push(d);
            opts.onStdout?.(d);
          });
          ch.stderr.on('data', (d: Buffer) => err.push(d));
          ch.on('error', () => undefined);
          ch.stderr.on('error', () => undefined);
          ch.on('exit', (c: number | null, sig?: string) => {
            if (typeof c === 'number') code = c;
            else if (sig) signal = sig;
          });
          ch.once('close', () => {
            if (ch.stderr.readableEnded) return complete();
            // stderr is ended right after the channel closes; wait for its last data, but not forever.
            const t = setTimeout(complete, 100);
            ch.stderr.once('end', () => {
              clearTimeout(t);
              complete();
            });
          });
          if (opts.stdin !== undefined) ch.end(opts.stdin);
          else ch.end();
        });
      } catch (e) {
        if (this.#lost !== null) onLost();
        else {
          finish();
          reject(new Error(`host ${this.host} (${this.address}): cannot start a command: ${errMessage(e)}`));
        }
      }
    });
  }

  /**
   * Runs an ssh2 callback-style operation, rejecting with ConnectionLostError if the connection
   * drops meanwhile; `what` names the subsystem in other failures.
   */
  #guard<T>(during: string, start: (cb: (err: Error | null | undefined, value: T) => void) => void, what = 'SFTP'): Promise<T> {
    if (this.#lost !== null) return Promise.reject(this.#lostError(during));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onLost = (): void => {
        if (settled) return;
        settled = true;
        reject(this.#lostError(during));
      };
      this.#lostHandlers.add(onLost);
      const cb = (e: Error | null | undefined, value: T): void => {
        if (settled) return;
        settled = true;
        this.#lostHandlers.delete(onLost);
        if (e) reject(this.#lost !== null ? this.#lostError(during) : new Error(`host ${this.host} (${this.address}): ${what} failed while ${during}: ${e.message}`));
        else resolve(value);
      };
      try {
        start(cb);
      } catch (e) {
        cb(e instanceof Error ? e : new Error(String(e)), undefined as T);
      }
    });
  }

  /** The connection's SFTP session, opened on first use and reused. */
  #sftpSession(during: string): Promise<SFTPWrapper> {
    if (!this.#sftp) {
      const p = this.#guard<SFTPWrapper>(during, (cb) => this.#client.sftp(cb));
      this.#sftp = p;
      p.then(
        (s) => {
          s.on('error', () => undefined);
          s.once('close', () => {
            if (this.#sftp === p) this.#sftp = undefined;
          });
        },
        () => {
          if (this.#sftp === p) this.#sftp = undefined;
        },
      );
    }
    return this.#sftp;
  }

  /** Writes `content` to a new file `remote` (mode 0600, must not exist) over SFTP. */
  async #upload(remote: string, content: Buffer, during: string): Promise<void> {
    const sftp = await this.#sftpSession(during);
    const handle = await this.#guard<Buffer>(during, (cb) => sftp.open(remote, 'wx', { mode: 0o600 }, cb));
    let failure: unknown;
    try {
      // ssh2 splits the buffer into packets of the server's maximum write size, one after another.
      await this.#guard<void>(during, (cb) => sftp.write(handle, content, 0, content.length, 0, (e) => cb(e, undefined)));
    } catch (e) {
      failure = e;
    }
    try {
      await this.#guard<void>(during, (cb) => sftp.close(handle, (e) => cb(e, undefined)));
    } catch (e) {
      failure ??= e;
    }
    if (failure !== undefined) throw failure;
  }

  /** Best-effort removal of a temp file after a failure (nothing to do if the connection is gone). */
  async #removeQuietly(remote: string): Promise<void> {
    if (this.#lost !== null) return;
    try {
      const sftp = await this.#sftpSession('removing a temp file');
      await this.#guard<void>('removing a temp file', (cb) => sftp.unlink(remote, (e) => cb(e, undefined)));
    } catch {
      // it may never have been created
    }
  }

  /**
   * The root-only stage folder of this host, made once per connection: created 0700 root:root (its
   * parents root's 0755), refused when it is a symlink or not a directory, so that nobody but root
   * can plant or swap a file there between the upload and the move into place.
   * @throws Error naming the host and the folder when it cannot be made safe.
   */
  #stageDir(): Promise<void> {
    if (!this.#stage) {
      const dir = this.#opts.stageDir;
      const p = (async () => {
        const res = await this.exec(privateDirCmd(dir, 'uploads'));
        if (res.code !== 0) throw new Error(`host ${this.host} (${this.address}): cannot use the upload stage folder ${dir}: ${res.stderr.trim() || `exit code ${res.code ?? 'none'}`}`);
      })();
      this.#stage = p;
      p.catch(() => {
        if (this.#stage === p) this.#stage = undefined;
      });
    }
    return this.#stage;
  }

  /**
   * Writes `content` to the absolute `path` atomically, owned by `owner:group` with `mode` (octal text).
   * The bytes go to a new file in the host's root-only stage folder ({@link SshPoolOptions.stageDir}):
   * by SFTP as root, or as another user by SFTP to `userTempDir` and then `sudo install -o -g -m`
   * into the stage. There the file gets its owner and mode (`chown -h`: never through a symlink;
   * nobody else can reach it), then `mv` moves it to `.<name>.airflow-ha-<random>.tmp` next to
   * `path` and renames that onto `path` (rename(2): atomic, and it replaces a symlink at `path`
   * instead of following it). Nothing is ever chowned or chmodded by name in the target folder, which
   * may belong to a service account (e.g. airflow or rabbitmq). Across filesystems the first `mv`
   * copies (mv(1)) into that new random name; the rename onto `path` stays atomic. On failure the
   * temp files are removed when the connection still works; `path` is never left half-written.
   * @throws ConnectionLostError if the connection drops; Error for bad arguments or a failed step.
   */
  async put(path: string, content: Buffer, opts: PutOptions): Promise<void> {
    if (!path.startsWith('/') || path.endsWith('/') || path.includes('\0')) throw new Error(`put: not an absolute file path: ${path}`);
    if (!/^[0-7]{3,4}$/.test(opts.mode)) throw new Error(`put ${path}: mode must be octal such as 0644, got ${opts.mode}`);
    for (const [what, v] of [['owner', opts.owner], ['group', opts.group]] as const) {
      if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/.test(v)) throw new Error(`put ${path}: invalid ${what} ${JSON.stringify(v)}`);
    }
    const tag = randomBytes(6).toString('hex');
    const during = `uploading ${path}`;
    const staged = posix.join(this.#opts.stageDir, `${tag}.upload`);
    const tmp = posix.join(posix.dirname(path), `.${posix.basename(path)}.airflow-ha-${tag}.tmp`);
    await this.#stageDir();

    let upload: string;
    let install: Cmd;
    if (this.user === 'root') {
      upload = staged;
      install = putFromStageCmd(staged, tmp, path, opts);
    } else {
      upload = posix.join(this.#opts.userTempDir, `.airflow-ha-${tag}.upload`);
      install = sh`install -o ${opts.owner} -g ${opts.group} -m ${opts.mode} -- ${upload} ${staged} && ${putFromStageCmd(staged, tmp, path, opts)}; rc=$?; rm -f -- ${upload}; exit "$rc"`;
    }
    try {
      await this.#upload(upload, content, during);
    } catch (e) {
      await this.#removeQuietly(upload);
      throw e;
    }
    let res: ExecResult;
    try {
      res = await this.exec(install);
    } catch (e) {
      if (!(e instanceof ConnectionLostError)) await this.#removeQuietly(upload);
      throw e;
    }
    if (res.code !== 0) {
      throw new Error(
        `host ${this.host} (${this.address}): could not put ${path} in place (exit code ${res.code ?? 'none'}): ${res.stderr.trim() || 'no message'}`,
      );
    }
  }

  /**
   * An interactive session, as `ssh HOST [CMD]` gives one: CMD (or, without it, the login shell)
   * run by sshd as the login user, NOT as root (no sudo), with a pseudo-terminal when `pty` is
   * given (RFC 4254 §6.2; the remote side then merges stderr into stdout). `stdin` is piped in
   * (its end sends EOF); output goes to `stdout`/`stderr`, which are not ended; `onResize` receives
   * the function that forwards a new window size (RFC 4254 §6.7 window-change).
   * @returns the remote exit status, or the signal that ended it (`code` null).
   * @throws ConnectionLostError when the connection drops first; Error when sshd refuses the session.
   */
  async session(opts: SessionOptions): Promise<{ code: number | null; signal?: string }> {
    const during = opts.command === undefined ? 'running an interactive shell' : 'running an interactive command';
    const pty = opts.pty ? { term: opts.pty.term, rows: opts.pty.rows, cols: opts.pty.cols } : undefined;
    const command = opts.command;
    const ch = await this.#guard<ClientChannel>(
      during,
      (cb) => (command !== undefined ? this.#client.exec(command, pty ? { pty } : {}, cb) : this.#client.shell(pty ?? false, cb)),
      'the SSH session',
    );
    let code: number | null = null;
    let signal: string | undefined;
    ch.on('exit', (c: number | null, sig?: string) => {
      if (typeof c === 'number') code = c;
      else if (sig) signal = sig;
    });
    ch.on('error', () => undefined);
    ch.pipe(opts.stdout, { end: false });
    ch.stderr.pipe(opts.stderr, { end: false });
    opts.stdin.pipe(ch);
    opts.onResize?.((rows, cols) => ch.setWindow(rows, cols, 0, 0));
    return new Promise((resolve, reject) => {
      const onLost = (): void => reject(this.#lostError(during));
      this.#lostHandlers.add(onLost);
      ch.once('close', () => {
        opts.stdin.unpipe(ch);
        // Let a connection loss that closed this channel be seen first.
        setImmediate(() => {
          this.#lostHandlers.delete(onLost);
          if (this.#lost !== null && code === null && signal === undefined) return onLost();
          resolve(signal ? { code: null, signal } : { code });
        });
      });
    });
  }

  /** Closes the connection (gracefully, then by force after 2 s). */
  async end(): Promise<void> {
    this.#ending = true;
    await endClient(this.#client);
  }
}
