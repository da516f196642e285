/** Shared set-up for the SSH pool tests: a temp dir, a client key file, a test server, pools. */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SshPool, type SshHostConfig, type SshPoolEvent, type SshPoolOptions } from '../../../src/ssh/pool.js';
import { knownHostsLine, makeKey, tempDir, TestSshServer, type KeyPair, type TestServerOptions } from './server.js';

export interface Fixture {
  dir: string;
  /** Directory the SFTP server may write (tests put files here). */
  root: string;
  clientKey: KeyPair;
  keyFile: string;
  knownHosts: string;
  servers: TestSshServer[];
  pools: SshPool[];
  events: SshPoolEvent[];
  server(opts?: Partial<TestServerOptions>): Promise<TestSshServer>;
  /** Writes known_hosts with these lines (newline-terminated). */
  trust(...lines: string[]): Promise<void>;
  /** A host config for `server` (root, the fixture's key, 3 s timeout), with overrides. */
  host(server: { port: number }, over?: Partial<SshHostConfig>): SshHostConfig;
  /** A pool over these hosts (retries 0 unless given), closed by `cleanup`. */
  pool(hosts: SshHostConfig[], over?: Partial<SshPoolOptions>): SshPool;
  cleanup(): Promise<void>;
}

export async function fixture(): Promise<Fixture> {
  const dir = await tempDir('ssh-pool-test-');
  const root = join(dir, 'root');
  await mkdir(root);
  const clientKey = makeKey();
  const keyFile = join(dir, 'id_ed25519');
  await writeFile(keyFile, clientKey.private, { mode: 0o600 });
  const knownHosts = join(dir, 'state', 'known_hosts');
  const f: Fixture = {
    dir,
    root,
    clientKey,
    keyFile,
    knownHosts,
    servers: [],
    pools: [],
    events: [],
    async server(opts = {}) {
      const s = await TestSshServer.start({ clientKeys: [clientKey], root, ...opts });
      f.servers.push(s);
      return s;
    },
    async trust(...lines) {
      await mkdir(join(dir, 'state'), { recursive: true });
      await writeFile(knownHosts, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
    },
    host(server, over = {}) {
      return { name: 'h1', address: '127.0.0.1', port: server.port, user: 'root', identityFile: keyFile, connectTimeoutSec: 3, ...over };
    },
    pool(hosts, over = {}) {
      const p = new SshPool({
        hosts: new Map(hosts.map((h) => [h.name, h])),
        knownHostsFile: knownHosts,
        acceptNewHostKeys: false,
        retries: 0,
        retryBaseDelaySec: 0.01,
        keepaliveIntervalSec: 5,
        onEvent: (e) => f.events.push(e),
        // Inside the SFTP root (never the default under /var/lib on this machine).
        stageDir: join(root, '.stage'),
        ...over,
      });
      f.pools.push(p);
      return p;
    },
    async cleanup() {
      await Promise.all(f.pools.map((p) => p.close()));
      await Promise.all(f.servers.map((s) => s.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return f;
}

/** A fixture with one running server whose key is already trusted. */
export async function trustedServer(opts: Partial<TestServerOptions> = {}): Promise<{ f: Fixture; server: TestSshServer }> {
  const f = await fixture();
  const server = await f.server(opts);
  await f.trust(knownHostsLine(server.port, server.hostKey));
  return { f, server };
}
