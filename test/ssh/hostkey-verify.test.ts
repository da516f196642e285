import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { access, readFile, stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { sh } from '../../src/core/cmd.js';
import { UnreachableError } from '../../src/core/errors.js';
import { fixture, type Fixture } from './helpers/fixture.js';
import { hashedKnownHostsLine, knownHostsLine, makeKey, type KeyPair, type TestSshServer } from './helpers/server.js';

/** The fingerprint as `ssh-keygen -lf` prints it, computed here independently of the code under test. */
function fp(key: KeyPair): string {
  return `SHA256:${createHash('sha256').update(key.blob).digest('base64').replace(/=+$/, '')}`;
}

function unreachable(check: (e: UnreachableError) => void): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof UnreachableError, String(e));
    assert.equal(e.exitCode, 3);
    check(e);
    return true;
  };
}

describe('host keys', () => {
  let f: Fixture;
  let server: TestSshServer;
  before(async () => {
    f = await fixture();
    server = await f.server();
  });
  after(() => f.cleanup());

  it('refuses an unknown key without --accept-new-host-keys, showing its fingerprint, and writes nothing', async () => {
    const pool = f.pool([f.host(server, { name: 'web1' })], { retries: 3 });
    await assert.rejects(
      pool.connect('web1'),
      unreachable((e) => {
        assert.equal(e.host, 'web1');
        assert.equal(e.address, '127.0.0.1');
        assert.ok(e.message.includes(fp(server.hostKey)), e.message);
        assert.match(e.message, /unknown SSH host key 256 SHA256:\S+ \(ED25519\)/);
        assert.match(e.message, /re-run with --accept-new-host-keys/);
        assert.ok(!/attempts/.test(e.message), 'a host-key refusal is not retried');
      }),
    );
    assert.equal(server.tcpConnections, 1);
    await assert.rejects(access(f.knownHosts));
  });

  it('with accept-new, records the key (file 0600, dir created), then a strict pool connects', async () => {
    const pool = f.pool([f.host(server, { name: 'web1' })], { acceptNewHostKeys: true });
    const conn = await pool.connect('web1');
    assert.equal((await conn.exec(sh`echo ok`)).stdout, 'ok\n');
    const text = await readFile(f.knownHosts, 'utf8');
    assert.equal(text, `[127.0.0.1]:${server.port} ssh-ed25519 ${server.hostKey.blob.toString('base64')} airflow-ha:web1\n`);
    assert.equal((await stat(f.knownHosts)).mode & 0o777, 0o600);
    const ev = f.events.find((e) => e.kind === 'host-key-recorded');
    assert.ok(ev && ev.kind === 'host-key-recorded' && ev.line === 1 && ev.key.includes(fp(server.hostKey)));

    const strict = f.pool([f.host(server, { name: 'web1' })], { acceptNewHostKeys: false });
    assert.equal((await (await strict.connect('web1')).exec(sh`echo again`)).stdout, 'again\n');
    assert.equal(await readFile(f.knownHosts, 'utf8'), text, 'nothing more recorded');
  });

  it('refuses a CHANGED key even with accept-new, showing both fingerprints and file:line', async () => {
    const oldKey = server.hostKey;
    await f.trust('# lab hosts', knownHostsLine(server.port, oldKey));
    const newKey = makeKey();
    server.setHostKey(newKey);
    try {
      const pool = f.pool([f.host(server, { name: 'web1' })], { acceptNewHostKeys: true });
      await assert.rejects(
        pool.connect('web1'),
        unreachable((e) => {
          assert.match(e.message, /HOST KEY CHANGED/);
          assert.ok(e.message.includes(`known 256 ${fp(oldKey)} (ED25519) at ${f.knownHosts}:2`), e.message);
          assert.ok(e.message.includes(`offered 256 ${fp(newKey)} (ED25519)`), e.message);
          assert.match(e.message, /Refused even with --accept-new-host-keys/);
        }),
      );
      assert.equal(await readFile(f.knownHosts, 'utf8'), `# lab hosts\n${knownHostsLine(server.port, oldKey)}\n`);
    } finally {
      server.setHostKey(oldKey);
    }
  });

  it('accepts a hashed entry (ssh-keygen -H format); a hashed entry for another port does not count', async () => {
    await f.trust(hashedKnownHostsLine(server.port, server.hostKey, randomBytes(20)));
    const pool = f.pool([f.host(server, { name: 'web1' })]);
    assert.equal((await (await pool.connect('web1')).exec(sh`echo hashed`)).stdout, 'hashed\n');

    await f.trust(hashedKnownHostsLine(server.port + 1, server.hostKey, randomBytes(20)));
    await assert.rejects(f.pool([f.host(server, { name: 'web1' })]).connect('web1'), /unknown SSH host key/);
  });

  it('needs the [host]:port form for a non-22 port; wildcard patterns match', async () => {
    const b64 = server.hostKey.blob.toString('base64');
    await f.trust(`127.0.0.1 ssh-ed25519 ${b64}`);
    await assert.rejects(f.pool([f.host(server)]).connect('h1'), /unknown SSH host key/);

    await f.trust(`other,[127.0.0.*]:${server.port} ssh-ed25519 ${b64}`);
    await f.pool([f.host(server)]).connect('h1');

    await f.trust(`[127.0.0.*]:${server.port},![127.0.0.1]:${server.port} ssh-ed25519 ${b64}`);
    await assert.rejects(f.pool([f.host(server)]).connect('h1'), /unknown SSH host key/);
  });

  it('refuses a key marked @revoked, even with accept-new', async () => {
    await f.trust(`@revoked * ssh-ed25519 ${server.hostKey.blob.toString('base64')}`);
    await assert.rejects(
      f.pool([f.host(server)], { acceptNewHostKeys: true }).connect('h1'),
      unreachable((e) => assert.match(e.message, /@revoked/)),
    );
  });
});

describe('host key type preference', () => {
  let f: Fixture;
  after(() => f.cleanup());

  it('asks for the key type known_hosts has when the server has several', async () => {
    f = await fixture();
    const ed = makeKey('ed25519');
    const ec = makeKey('ecdsa');
    const server = await f.server({ hostKey: ed, alsoHostKeys: [ec] });
    // Only the ECDSA key is known: left to its defaults ssh2 would pick Ed25519 and see a "changed" key.
    await f.trust(knownHostsLine(server.port, ec));
    const conn = await f.pool([f.host(server)]).connect('h1');
    assert.equal((await conn.exec(sh`echo ecdsa`)).stdout, 'ecdsa\n');
  });
});
