/**
 * A Connection to this machine (sh -c as the current user, root in CI), so tasks and the runner
 * can be exercised against a real filesystem and shell without SSH. Records every call.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Cmd } from '../../src/core/cmd.js';
import type { Connection, ExecOptions, ExecResult, PutOptions, Transport } from '../../src/ssh/transport.js';

export interface Call {
  kind: 'exec' | 'put';
  text: string;
}

export class LocalConnection implements Connection {
  readonly calls: Call[] = [];
  constructor(readonly host = 'local') {}

  exec(cmd: Cmd, opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ kind: 'exec', text: cmd.toString() });
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', cmd.render()], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
        opts.onStdout?.(d);
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const timer = opts.timeoutSec ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutSec * 1000) : undefined;
      child.on('error', reject);
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      // A command that exits without reading stdin closes the pipe first: not an error here.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.stdin ?? '');
    });
  }

  async put(p: string, content: Buffer, opts: PutOptions): Promise<void> {
    this.calls.push({ kind: 'put', text: `${p} ${opts.owner}:${opts.group} ${opts.mode}` });
    const tmp = path.join(path.dirname(p), `.${path.basename(p)}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(tmp, content);
    const uid = Number((await this.exec(shId('-u', opts.owner))).stdout.trim());
    const gid = Number((await this.exec(shId('-g', opts.group))).stdout.trim());
    this.calls.pop();
    this.calls.pop();
    await chown(tmp, uid, gid);
    await chmod(tmp, parseInt(opts.mode, 8));
    await rename(tmp, p);
  }
}

import { sh } from '../../src/core/cmd.js';
function shId(flag: '-u' | '-g', name: string): Cmd {
  return flag === '-u' ? sh`id -u ${name}` : sh`getent group ${name} | cut -d: -f3`;
}

/** A transport whose hosts are all this machine (one LocalConnection per host name). */
export class LocalTransport implements Transport {
  readonly conns = new Map<string, LocalConnection>();
  constructor(private readonly unreachable: ReadonlySet<string> = new Set()) {}
  async connect(host: string): Promise<Connection> {
    if (this.unreachable.has(host)) {
      const { UnreachableError } = await import('../../src/core/errors.js');
      throw new UnreachableError(host, '203.0.113.1', 'connect ECONNREFUSED (test)');
    }
    let c = this.conns.get(host);
    if (!c) this.conns.set(host, (c = new LocalConnection(host)));
    return c;
  }
  async close(): Promise<void> {}
}

export function tempDir(prefix = 'ah-test-'): string {
  return path.join(os.tmpdir(), `${prefix}${randomBytes(4).toString('hex')}`);
}

/** Runs `fn` in a new {@link tempDir}, created for it and removed after it, whatever it does. */
export async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
