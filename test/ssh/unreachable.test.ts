import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { InputError, UnreachableError } from '../../src/core/errors.js';
import { fixture, type Fixture } from './helpers/fixture.js';
import { knownHostsLine, makeKey } from './helpers/server.js';

/** A TCP server on 127.0.0.1 that does `onSocket` with each connection and counts them. */
async function tcpServer(onSocket: (s: Socket) => void): Promise<{ port: number; accepted: () => number; times: number[]; close: () => Promise<void> }> {
  let accepted = 0;
  const times: number[] = [];
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    accepted++;
    times.push(performance.now());
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  return {
    port: (srv.address() as AddressInfo).port,
    accepted: () => accepted,
    times,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => srv.close(() => res()));
    },
  };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
async function closedPort(): Promise<number> {
  const t = await tcpServer(() => undefined);
  await t.close();
  return t.port;
}

describe('unreachable hosts', () => {
  let f: Fixture;
  before(async () => (f = await fixture()));
  after(() => f.cleanup());

  it('a closed port: UnreachableError naming host, address and ECONNREFUSED, after a bounded number of attempts', async () => {
    const port = await closedPort();
    const pool = f.pool([f.host({ port }, { name: 'db1' })], { retries: 2, retryBaseDelaySec: 0.01 });
    const attemptsBefore = f.events.filter((e) => e.kind === 'attempt' && e.host === 'db1').length;
    await assert.rejects(pool.connect('db1'), (e: unknown) => {
      assert.ok(e instanceof UnreachableError, String(e));
      assert.equal(e.exitCode, 3);
      assert.equal(e.host, 'db1');
      assert.equal(e.address, '127.0.0.1');
      assert.match(e.reason, /ECONNREFUSED/);
      assert.match(e.message, /host db1 \(127\.0\.0\.1\) unreachable: connection refused by 127\.0\.0\.1:\d+/);
      assert.match(e.message, /gave up after 3 attempts/);
      return true;
    });
    const attempts = f.events.filter((e) => e.kind === 'attempt' && e.host === 'db1').length - attemptsBefore;
    assert.equal(attempts, 3);
    assert.equal(f.events.filter((e) => e.kind === 'retry' && e.host === 'db1').length, 2);
    // Concurrent callers share one opening; a later call tries again (the host may have come back).
    const [a, b] = await Promise.allSettled([pool.connect('db1'), pool.connect('db1')]);
    assert.equal(a.status, 'rejected');
    assert.equal(b.status === 'rejected' && a.status === 'rejected' && b.reason === a.reason, true);
    assert.equal(f.events.filter((e) => e.kind === 'attempt' && e.host === 'db1').length - attemptsBefore, 6);
  });

  it('a connection reset before the handshake is retried: the server sees 1 + retries connections', async () => {
    const t = await tcpServer((s) => s.destroy());
    try {
      const pool = f.pool([f.host(t, { name: 'reset' })], { retries: 2, retryBaseDelaySec: 0.01 });
      await assert.rejects(pool.connect('reset'), (e: unknown) => {
        assert.ok(e instanceof UnreachableError);
        assert.match(e.reason, /before SSH was ready/);
        return true;
      });
      assert.equal(t.accepted(), 3);
    } finally {
      await t.close();
    }
  });

  it('a silent server times out (readyTimeout), retried; starts are capped by maxConcurrentStarts', async () => {
    const t = await tcpServer((s) => s.resume()); // accepts, reads, never speaks
    try {
      const hosts = ['s1', 's2', 's3', 's4'].map((name) => f.host(t, { name, connectTimeoutSec: 0.3 }));
      const pool = f.pool(hosts, { retries: 1, retryBaseDelaySec: 0.01, maxConcurrentStarts: 2 });
      const results = await Promise.allSettled(hosts.map((h) => pool.connect(h.name)));
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        const e = r.status === 'rejected' ? r.reason : undefined;
        assert.ok(e instanceof UnreachableError);
        assert.match(e.reason, /no SSH handshake .* within 0\.3 s \(timeout\)/);
      }
      assert.equal(t.accepted(), 8);
      // With 2 starts allowed at once, the 3rd connection cannot begin before one of the first two
      // timed out (0.3 s); without the cap all four would arrive together.
      const [t0, , t2] = t.times;
      assert.ok(t2! - t0! >= 250, `3rd start ${Math.round(t2! - t0!)} ms after the 1st`);
    } finally {
      await t.close();
    }
  });

  it('an authentication failure is not retried and says so', async () => {
    const other = makeKey();
    const server = await f.server({ clientKeys: [other] });
    await f.trust(knownHostsLine(server.port, server.hostKey));
    const pool = f.pool([f.host(server, { name: 'auth1', user: 'deploy' })], { retries: 3 });
    await assert.rejects(pool.connect('auth1'), (e: unknown) => {
      assert.ok(e instanceof UnreachableError);
      assert.match(e.reason, /authentication as deploy failed \(All configured authentication methods failed\); tried: key /);
      return true;
    });
    assert.equal(server.tcpConnections, 1);
  });

  it('an unreadable identity file is bad input (exit 2), not an unreachable host', async () => {
    const server = await f.server();
    await f.trust(knownHostsLine(server.port, server.hostKey));
    const pool = f.pool([f.host(server, { name: 'nokey', identityFile: `${f.dir}/missing_key` })]);
    await assert.rejects(pool.connect('nokey'), (e: unknown) => {
      assert.ok(e instanceof InputError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /host nokey: cannot read SSH identity file .*missing_key: ENOENT/);
      return true;
    });
    assert.equal(server.tcpConnections, 0);
  });

  it('a jump host that cannot be reached, or cannot reach the target, is named in the reason', async () => {
    const port = await closedPort();
    const jumpDown = f.host({ port }, { name: 'bastion' });
    const pool = f.pool([f.host({ port: 22 }, { name: 'inner', jump: jumpDown })], { retries: 1 });
    await assert.rejects(pool.connect('inner'), (e: unknown) => {
      assert.ok(e instanceof UnreachableError);
      assert.equal(e.host, 'inner');
      assert.match(e.reason, /^via jump host bastion \(127\.0\.0\.1\): connection refused .*ECONNREFUSED.*gave up after 2 attempts/);
      return true;
    });

    const jump = await f.server();
    await f.trust(knownHostsLine(jump.port, jump.hostKey));
    const pool2 = f.pool([f.host({ port }, { name: 'inner', jump: f.host(jump, { name: 'bastion' }) })]);
    await assert.rejects(pool2.connect('inner'), (e: unknown) => {
      assert.ok(e instanceof UnreachableError);
      assert.match(e.reason, new RegExp(`the jump host bastion \\(127\\.0\\.0\\.1\\) could not open a TCP connection to 127\\.0\\.0\\.1:${port}: connect failed`));
      return true;
    });
  });

  it('an unknown inventory host name is a programming error', async () => {
    await assert.rejects(f.pool([]).connect('nope'), /no SSH settings for host nope/);
  });
});
