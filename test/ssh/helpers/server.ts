/**
 * An in-process SSH server for tests, on 127.0.0.1 (random port): ssh2 `Server` with a generated
 * host key, publickey auth for given client keys, `exec` by the local `/bin/sh -c` (with a fake
 * `sudo` first on PATH), a small SFTP subsystem over the local filesystem restricted to a root
 * directory, `direct-tcpip` to 127.0.0.1 only (to act as a jump host), and ways to misbehave:
 * drop every connection, drop after N SFTP writes, swap the host key.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { createServer, connect as netConnect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, Connection as ServerConnection, ParsedKey, SFTPWrapper, Server as Ssh2Server } from 'ssh2';

const { Server, utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;

/** A generated key pair: OpenSSH private key text, `ssh-… AAAA…` public line, and the public blob. */
export interface KeyPair {
  private: string;
  public: string;
  blob: Buffer;
  parsed: ParsedKey;
}

/** Generates a key pair (ed25519 by default; fast). */
export function makeKey(type: 'ed25519' | 'ecdsa' = 'ed25519'): KeyPair {
  // ssh2 1.17's generator sometimes drops a leading zero byte of an Ed25519 public key, giving a
  // key its own parser rejects (about 1 in 200): generate again until both halves parse and agree.
  for (let i = 0; i < 20; i++) {
    const kp = type === 'ecdsa' ? utils.generateKeyPairSync('ecdsa', { bits: 256 }) : utils.generateKeyPairSync('ed25519');
    const parsed = utils.parseKey(kp.public);
    const priv = utils.parseKey(kp.private);
    if (parsed instanceof Error || priv instanceof Error) continue;
    if (!priv.getPublicSSH().equals(parsed.getPublicSSH())) continue;
    return { private: kp.private, public: kp.public, blob: parsed.getPublicSSH(), parsed };
  }
  throw new Error(`could not generate a usable ${type} key`);
}

/** A plain known_hosts line for 127.0.0.1:port. */
export function knownHostsLine(port: number, key: KeyPair, name = `[127.0.0.1]:${port}`): string {
  const type = key.public.split(' ')[0];
  return `${name} ${type} ${key.blob.toString('base64')}`;
}

/** A hashed (`ssh-keygen -H` style) known_hosts line for 127.0.0.1:port, computed here independently. */
export function hashedKnownHostsLine(port: number, key: KeyPair, salt: Buffer): string {
  const name = `[127.0.0.1]:${port}`;
  const mac = createHmac('sha1', salt).update(name).digest('base64');
  const type = key.public.split(' ')[0];
  return `|1|${salt.toString('base64')}|${mac} ${type} ${key.blob.toString('base64')}`;
}

/** How the fake `sudo` behaves: run the command, or answer like sudo without NOPASSWD. */
export type FakeSudo = 'pass' | 'password';

export interface TestServerOptions {
  /** Keys allowed to log in (any user name). */
  clientKeys: KeyPair[];
  /** Directory SFTP may touch (everything else: permission denied). */
  root: string;
  hostKey?: KeyPair;
  /** More host keys of other types (the server offers all; the client picks by its preference). */
  alsoHostKeys?: KeyPair[];
  sudo?: FakeSudo;
}

/** Converts fs stats to SFTP attributes. */
function attrsOf(s: { mode: number; uid: number; gid: number; size: number; atimeMs: number; mtimeMs: number }): Attributes {
  return { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: Math.floor(s.atimeMs / 1000), mtime: Math.floor(s.mtimeMs / 1000) };
}

/** Kills a detached child's whole process group (ignoring ones already gone). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function statusOf(e: unknown): number {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return STATUS.NO_SUCH_FILE;
  if (code === 'EACCES' || code === 'EPERM') return STATUS.PERMISSION_DENIED;
  return STATUS.FAILURE;
}

export class TestSshServer {
  readonly host = '127.0.0.1';
  port = 0;
  hostKey: KeyPair;
  sudo: FakeSudo;
  /** TCP connections accepted so far. */
  tcpConnections = 0;
  /** Every exec command line received, in order. */
  readonly commands: string[] = [];
  /** Pseudo-terminal requests (RFC 4254 §6.2) and window changes (§6.7) received, in order. */
  readonly terminal: { kind: 'pty' | 'window-change'; term?: string; rows: number; cols: number }[] = [];
  /** User names that authenticated. */
  readonly users: string[] = [];
  /** SFTP WRITE requests received. */
  sftpWrites = 0;
  /** Drop every connection when this many SFTP WRITEs have arrived (after doing the write). */
  dropAfterSftpWrites: number | null = null;
  /** Called with each exec command line once its process started. */
  onExec: ((command: string) => void) | null = null;
  /** Called with each exec command line before its process starts (e.g. to act as another local user would meanwhile). */
  beforeExec: ((command: string) => void) | null = null;

  readonly #opts: TestServerOptions;
  readonly #sockets = new Set<Socket>();
  readonly #children = new Set<ChildProcess>();
  #net!: NetServer;
  #ssh!: Ssh2Server;
  #binDir = '';

  private constructor(opts: TestServerOptions) {
    this.#opts = opts;
    this.hostKey = opts.hostKey ?? makeKey();
    this.sudo = opts.sudo ?? 'pass';
  }

  /** Starts a server on 127.0.0.1 at a random port. */
  static async start(opts: TestServerOptions): Promise<TestSshServer> {
    const s = new TestSshServer(opts);
    s.#binDir = await mkdtemp(join(tmpdir(), 'ssh-test-bin-'));
    for (const kind of ['pass', 'password'] as const) {
      const dir = join(s.#binDir, kind);
      await mkdir(dir);
      const script =
        kind === 'pass'
          ? '#!/bin/sh\n[ "$1" = "-n" ] && shift\nexec "$@"\n'
          : '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n';
      await writeFile(join(dir, 'sudo'), script);
      await chmod(join(dir, 'sudo'), 0o755);
    }
    s.#ssh = s.#makeSsh(s.hostKey);
    s.#net = createServer((sock) => {
      s.tcpConnections++;
      s.#sockets.add(sock);
      sock.once('close', () => s.#sockets.delete(sock));
      sock.on('error', () => undefined);
      s.#ssh.injectSocket(sock);
    });
    await new Promise<void>((res) => s.#net.listen(0, '127.0.0.1', () => res()));
    s.port = (s.#net.address() as AddressInfo).port;
    return s;
  }

  /** From now on, new connections see this host key (as if sshd were reinstalled on the same port). */
  setHostKey(key: KeyPair): void {
    this.hostKey = key;
    this.#ssh = this.#makeSsh(key);
  }

  /** Destroys every TCP connection abruptly (no SSH disconnect message). */
  dropAll(): void {
    for (const s of this.#sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    for (const c of this.#children) killGroup(c);
    await new Promise<void>((res) => this.#net.close(() => res()));
    await rm(this.#binDir, { recursive: true, force: true });
  }

  #inRoot(p: string): string | null {
    const root = resolve(this.#opts.root);
    const full = resolve('/', p);
    return full === root || full.startsWith(root + sep) ? full : null;
  }

  #makeSsh(hostKey: KeyPair): Ssh2Server {
    const keys = [hostKey, ...(this.#opts.alsoHostKeys ?? [])].map((k) => k.private);
    return new Server({ hostKeys: keys }, (client) => this.#onClient(client));
  }

  #onClient(client: ServerConnection): void {
    const mine = new Set<ChildProcess>();
    client.on('error', () => undefined);
    client.on('close', () => {
      for (const c of mine) killGroup(c);
    });
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const allowed = this.#opts.clientKeys.find((k) => k.blob.equals(ctx.key.data));
      if (!allowed) return ctx.reject(['publickey']);
      if (ctx.signature && ctx.blob) {
        if (!allowed.parsed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey']);
        this.users.push(ctx.username);
      }
      ctx.accept();
    });
    client.on('tcpip', (accept, reject, info) => {
      if (info.destIP !== '127.0.0.1') return reject();
      const sock = netConnect(info.destPort, info.destIP);
      sock.once('error', () => reject());
      sock.once('connect', () => {
        const ch = accept();
        ch.on('error', () => sock.destroy());
        sock.on('error', () => ch.destroy());
        ch.pipe(sock).pipe(ch);
      });
    });
    client.on('session', (acceptSession) => {
      const session = acceptSession();
      let current: ChildProcess | undefined;
      session.on('signal', (_accept, _reject, info) => {
        if (current) killGroup(current, `SIG${info.name}` as NodeJS.Signals);
      });
      // A pty is recorded and granted; the command still runs on pipes (enough to see what was asked).
      session.on('pty', (accept, _reject, info) => {
        this.terminal.push({ kind: 'pty', term: info.term, rows: info.rows, cols: info.cols });
        accept?.();
      });
      session.on('window-change', (accept, _reject, info) => {
        this.terminal.push({ kind: 'window-change', rows: info.rows, cols: info.cols });
        accept?.();
      });
      session.on('exec', (accept, _reject, info) => {
        const ch = accept();
        this.commands.push(info.command);
        this.beforeExec?.(info.command);
        const child = spawn('/bin/sh', ['-c', info.command], {
          env: { PATH: `${join(this.#binDir, this.sudo)}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: this.#opts.root, LANG: 'C' },
          stdio: 'pipe',
          detached: true, // its own process group, so a kill reaches `sh -c`'s children too
        });
        current = child;
        mine.add(child);
        this.#children.add(child);
        child.stdin.on('error', () => undefined);
        ch.on('error', () => undefined);
        ch.pipe(child.stdin);
        child.stdout.pipe(ch, { end: false });
        child.stderr.pipe(ch.stderr, { end: false });
        ch.once('close', () => killGroup(child));
        child.once('close', (code, signal) => {
          mine.delete(child);
          this.#children.delete(child);
          try {
            if (code !== null) ch.exit(code);
            else ch.exit((signal ?? 'KILL').replace(/^SIG/, ''), false, '');
            ch.end();
          } catch {
            // channel already gone
          }
        });
        this.onExec?.(info.command);
      });
      session.on('sftp', (acceptSftp) => this.#sftp(acceptSftp()));
    });
  }

  #sftp(sftp: SFTPWrapper): void {
    const handles = new Map<number, FileHandle>();
    let next = 1;
    const handleBuf = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const fh = (b: Buffer): FileHandle | undefined => (b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined);
    const denied = (reqid: number): void => sftp.status(reqid, STATUS.PERMISSION_DENIED, 'outside the test root');
    sftp.on('error', () => undefined);

    sftp.on('OPEN', (reqid, filename, flags, attrs) => {
      const p = this.#inRoot(filename);
      const mode = utils.sftp.flagsToString(flags);
      if (!p) return denied(reqid);
      if (!mode) return sftp.status(reqid, STATUS.FAILURE, 'bad flags');
      open(p, mode, attrs && typeof attrs.mode === 'number' ? attrs.mode & 0o7777 : 0o644).then(
        (h) => {
          const n = next++;
          handles.set(n, h);
          sftp.handle(reqid, handleBuf(n));
        },
        (e) => sftp.status(reqid, statusOf(e)),
      );
    });
    sftp.on('WRITE', (reqid, handle, offset, data) => {
      const h = fh(handle);
      if (!h) return sftp.status(reqid, STATUS.FAILURE, 'bad handle');
      this.sftpWrites++;
      h.write(data, 0, data.length, offset).then(
        () => {
          if (this.dropAfterSftpWrites !== null && this.sftpWrites >= this.dropAfterSftpWrites) {
            this.dropAll();
            return;
          }
          sftp.status(reqid, STATUS.OK);
        },
        (e) => sftp.status(reqid, statusOf(e)),
      );
    });
    sftp.on('READ', (reqid, handle, offset, length) => {
      const h = fh(handle);
      if (!h) return sftp.status(reqid, STATUS.FAILURE, 'bad handle');
      const buf = Buffer.alloc(length);
      h.read(buf, 0, length, offset).then(
        ({ bytesRead }) => (bytesRead === 0 ? sftp.status(reqid, STATUS.EOF) : sftp.data(reqid, buf.subarray(0, bytesRead))),
        (e) => sftp.status(reqid, statusOf(e)),
      );
    });
    sftp.on('CLOSE', (reqid, handle) => {
      const h = fh(handle);
      if (!h) return sftp.status(reqid, STATUS.FAILURE, 'bad handle');
      handles.delete(handle.readUInt32BE(0));
      h.close().then(
        () => sftp.status(reqid, STATUS.OK),
        (e) => sftp.status(reqid, statusOf(e)),
      );
    });
    sftp.on('FSTAT', (reqid, handle) => {
      const h = fh(handle);
      if (!h) return sftp.status(reqid, STATUS.FAILURE, 'bad handle');
      h.stat().then(
        (s) => sftp.attrs(reqid, attrsOf(s)),
        (e) => sftp.status(reqid, statusOf(e)),
      );
    });
    const statPath = (reqid: number, path: string): void => {
      const p = this.#inRoot(path);
      if (!p) return denied(reqid);
      stat(p).then(
        (s) => sftp.attrs(reqid, attrsOf(s)),
        (e) => sftp.status(reqid, statusOf(e)),
      );
    };
    sftp.on('STAT', statPath);
    sftp.on('LSTAT', statPath);
    sftp.on('REALPATH', (reqid, path) => {
      const full = resolve('/', path);
      sftp.name(reqid, [{ filename: full, longname: full, attrs: { mode: 0, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0 } }]);
    });
    sftp.on('REMOVE', (reqid, path) => {
      const p = this.#inRoot(path);
      if (!p) return denied(reqid);
      unlink(p).then(
        () => sftp.status(reqid, STATUS.OK),
        (e) => sftp.status(reqid, statusOf(e)),
      );
    });
    sftp.on('RENAME', (reqid, from, to) => {
      const a = this.#inRoot(from);
      const b = this.#inRoot(to);
      if (!a || !b) return denied(reqid);
      rename(a, b).then(
        () => sftp.status(reqid, STATUS.OK),
        (e) => sftp.status(reqid, statusOf(e)),
      );
    });
    sftp.on('close', () => {
      for (const h of handles.values()) void h.close().catch(() => undefined);
      handles.clear();
    });
  }
}

/** A fresh temp directory for one test file. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
