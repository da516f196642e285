/**
 * The CLI's transport (src/cli/transport.ts `buildTransport`) over in-process SSH servers on
 * loopback: a ProxyJump chain read from an ssh_config fixture (two jump servers, then the target),
 * and `--known-hosts`: an operator's hashed known_hosts trusted, never written; a changed key is
 * refused in either file, with both fingerprints.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sh } from '../../src/core/cmd.js';
import { UnreachableError } from '../../src/core/errors.js';
import { parseInventory } from '../../src/inventory/load.js';
import { buildTransport } from '../../src/cli/transport.js';
import { fingerprintSha256 } from '../../src/ssh/hostkeys.js';
import { ROOT } from '../helpers/lab.js';
import { fixture, type Fixture } from './helpers/fixture.js';
import { hashedKnownHostsLine, knownHostsLine, makeKey, type TestSshServer } from './helpers/server.js';

const INVENTORY = `cluster:
  name: t
  network: 127.0.0.0/24
  vips: []
hosts:
  - { name: target, address: 127.0.0.1, roles: [etcd] }
`;

describe('ssh_config ProxyJump chain through the CLI transport', () => {
  let f: Fixture;
  let outer: TestSshServer;
  let inner: TestSshServer;
  let target: TestSshServer;
  let configFile: string;
  before(async () => {
    f = await fixture();
    [outer, inner, target] = [await f.server(), await f.server(), await f.server()];
    const text = (await readFile(join(ROOT, 'test', 'fixtures', 'ssh_config', 'chain.conf'), 'utf8'))
      .replace('@OUTER_PORT@', String(outer.port))
      .replace('@INNER_PORT@', String(inner.port))
      .replace('@TARGET_PORT@', String(target.port))
      .replace('@KEY@', f.keyFile);
    configFile = join(f.dir, 'ssh_config');
    await writeFile(configFile, text);
  });
  after(() => f.cleanup());

  it('reaches the target through outer, then inner, each host key pinned in the state folder', async () => {
    const loaded = parseInventory(INVENTORY, join(f.dir, 'site.yaml'));
    await mkdir(loaded.stateDir, { recursive: true });
    await writeFile(join(loaded.stateDir, 'known_hosts'), [outer, inner, target].map((s) => `${knownHostsLine(s.port, s.hostKey)}\n`).join(''));
    const notes: string[] = [];
    const pool = await buildTransport(loaded, { env: { HOME: f.dir }, cwd: f.dir, err: (t) => notes.push(t) }, { sshConfig: configFile });
    try {
      const conn = await pool.connect('target');
      const res = await conn.exec(sh`echo reached`);
      assert.equal(res.stdout, 'reached\n');
      assert.deepEqual(target.commands.length, 1);
      assert.equal(outer.tcpConnections, 1, 'outer: the one connection from here');
      assert.equal(inner.tcpConnections, 1, 'inner: tunnelled through outer');
      assert.equal(target.tcpConnections, 1, 'target: tunnelled through inner');
      assert.deepEqual([outer.users, inner.users, target.users], [['root'], ['root'], ['root']]);
      assert.equal(outer.commands.length + inner.commands.length, 0, 'the jump hosts run nothing');
      assert.deepEqual(notes, []);
    } finally {
      await pool.close();
    }
  });
});

describe('--known-hosts: the operator\'s known_hosts, hashed entries, read only', () => {
  let f: Fixture;
  let server: TestSshServer;
  let operatorFile: string;
  const loadedIn = (f: Fixture) => parseInventory(INVENTORY.replace('address: 127.0.0.1, roles', `address: 127.0.0.1, ssh: { port: ${server.port}, identityFile: ${f.keyFile} }, roles`), join(f.dir, 'site.yaml'));
  before(async () => {
    f = await fixture();
    server = await f.server();
    operatorFile = join(f.dir, 'operator_known_hosts');
    // As `ssh-keygen -H` leaves it: a comment, another host's revoked key, then this host hashed.
    const other = makeKey();
    await writeFile(
      operatorFile,
      `# operator's known_hosts\n@revoked [127.0.0.1]:1 ${other.public.split(' ').slice(0, 2).join(' ')}\n${hashedKnownHostsLine(server.port, server.hostKey, randomBytes(20))}\n`,
    );
  });
  after(() => f.cleanup());

  const io = () => ({ env: { HOME: f.dir }, cwd: f.dir, err: () => undefined });

  it('a host key found hashed in --known-hosts is accepted; that file is never written, nothing is recorded', async () => {
    const before = await readFile(operatorFile, 'utf8');
    const loaded = loadedIn(f);
    const pool = await buildTransport(loaded, io(), { sshConfig: 'none', knownHosts: operatorFile, acceptNewHostKeys: true });
    try {
      const res = await (await pool.connect('target')).exec(sh`echo ok`);
      assert.equal(res.stdout, 'ok\n');
    } finally {
      await pool.close();
    }
    assert.equal(await readFile(operatorFile, 'utf8'), before);
    await assert.rejects(readFile(join(loaded.stateDir, 'known_hosts'), 'utf8'), /ENOENT/, 'known in the operator file: nothing recorded in the state folder');
  });

  it('without --known-hosts the same key is unknown (refused without --accept-new-host-keys)', async () => {
    const pool = await buildTransport(loadedIn(f), io(), { sshConfig: 'none' });
    try {
      await assert.rejects(pool.connect('target'), (e: unknown) => e instanceof UnreachableError && /unknown SSH host key/.test(e.message));
    } finally {
      await pool.close();
    }
  });

  it('a changed key is refused with both fingerprints, whichever file knows the old one', async () => {
    const old = server.hostKey;
    const fresh = makeKey();
    server.setHostKey(fresh);
    try {
      const pool = await buildTransport(loadedIn(f), io(), { sshConfig: 'none', knownHosts: operatorFile, acceptNewHostKeys: true });
      try {
        await assert.rejects(pool.connect('target'), (e: unknown) => {
          assert.ok(e instanceof UnreachableError, String(e));
          assert.match(e.message, /SSH HOST KEY CHANGED/);
          assert.ok(e.message.includes(`${fingerprintSha256(old.blob)} (ED25519) at ${operatorFile}:3`), e.message);
          assert.ok(e.message.includes(`offered 256 ${fingerprintSha256(fresh.blob)}`), e.message);
          return true;
        });
      } finally {
        await pool.close();
      }
      // The new key known to the operator's file, the old one pinned in the state folder: refused too.
      const loaded = loadedIn(f);
      await mkdir(loaded.stateDir, { recursive: true });
      await writeFile(join(loaded.stateDir, 'known_hosts'), `${knownHostsLine(server.port, old)}\n`);
      const freshFile = join(f.dir, 'operator_known_hosts_fresh');
      await writeFile(freshFile, `${hashedKnownHostsLine(server.port, fresh, randomBytes(20))}\n`);
      const pool2 = await buildTransport(loaded, io(), { sshConfig: 'none', knownHosts: freshFile });
      try {
        await assert.rejects(pool2.connect('target'), (e: unknown) => {
          assert.ok(e instanceof UnreachableError && /SSH HOST KEY CHANGED/.test(e.message), String(e));
          assert.ok(e.message.includes(`${fingerprintSha256(old.blob)} (ED25519) at ${join(loaded.stateDir, 'known_hosts')}:1`), e.message);
          return true;
        });
      } finally {
        await pool2.close();
      }
    } finally {
      server.setHostKey(old);
    }
  });

  it('a --known-hosts file that cannot be read is bad input before anything connects', async () => {
    const seen = server.tcpConnections;
    await assert.rejects(buildTransport(loadedIn(f), io(), { sshConfig: 'none', knownHosts: join(f.dir, 'nope') }), /cannot read --known-hosts .*nope: ENOENT/);
    assert.equal(server.tcpConnections, seen, 'no connection was made');
  });
});
