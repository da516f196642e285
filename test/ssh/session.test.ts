/**
 * `airflow-ha ssh HOST -- CMD` against the in-process server: the command goes to sshd as typed
 * (run by the login user, no sudo wrapper), stdin is piped in, stdout and stderr come back apart,
 * and the remote exit code is the result.
 */
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode } from '../../src/core/errors.js';
import { runSession, type Terminal } from '../../src/cli/ssh.js';
import type { SshConnection } from '../../src/ssh/pool.js';
import { runMain } from '../helpers/cli.js';
import { trustedServer, type Fixture } from './helpers/fixture.js';
import type { TestSshServer } from './helpers/server.js';

/** A terminal of pipes (no TTY): `input` is written to stdin, then stdin ends unless `open`. */
function pipes(input: string, open = false): Terminal & { out: () => string; errText: () => string } {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  if (open) stdin.write(input);
  else stdin.end(input);
  return { stdin, stdout, stderr, out: () => out, errText: () => err };
}

describe('ssh -- CMD through the pool', () => {
  let f: Fixture;
  let server: TestSshServer;
  let conn: SshConnection;
  before(async () => {
    ({ f, server } = await trustedServer());
    const pool = f.pool([f.host(server, { name: 'sql1', user: 'deploy' })]);
    conn = await pool.connect('sql1');
  });
  after(() => f.cleanup());

  it('runs the words as one command line, as the login user, stdin piped, exit code returned', async () => {
    const term = pipes('alpha\nbeta\n');
    const code = await runSession(conn, ['while', 'read', 'l;', 'do', 'echo', '"got $l";', 'done;', 'echo', 'to-stderr', '>&2;', 'exit', '7'], term);
    assert.equal(code, 7);
    assert.equal(term.out(), 'got alpha\ngot beta\n');
    assert.equal(term.errText(), 'to-stderr\n');
    assert.equal(server.commands.at(-1), 'while read l; do echo "got $l"; done; echo to-stderr >&2; exit 7', 'as typed: no sudo, no sh -c wrapper');
  });

  it('a command that succeeds gives 0, and the connection stays usable', async () => {
    assert.equal(await runSession(conn, ['true'], pipes('')), 0);
    const again = pipes('');
    assert.equal(await runSession(conn, ['echo', 'again'], again), 0);
    assert.equal(again.out(), 'again\n');
  });

  it('on a terminal: a pty of its type and size, raw mode during the session, size changes forwarded', async () => {
    const term = pipes('', true); // a terminal's stdin stays open (ssh2 sends window changes only then)
    const raw: boolean[] = [];
    let resize: (() => void) | undefined;
    let size = { rows: 40, cols: 120 };
    const tty = {
      term: 'xterm-test',
      size: () => size,
      setRaw: (on: boolean) => raw.push(on),
      onResize: (cb: () => void) => {
        resize = cb;
        return () => (resize = undefined);
      },
    };
    const seen = server.terminal.length;
    // The window changes while the remote command runs (it sleeps 0.3 s, then exits 3); the
    // client has its channel a moment after the server started the command.
    server.onExec = () => {
      setTimeout(() => {
        size = { rows: 50, cols: 132 };
        resize?.();
      }, 100);
    };
    try {
      const code = await runSession(conn, ['sleep', '0.3;', 'exit', '3'], { ...term, tty });
      assert.equal(code, 3);
    } finally {
      server.onExec = null;
    }
    assert.deepEqual(server.terminal.slice(seen), [
      { kind: 'pty', term: 'xterm-test', rows: 40, cols: 120 },
      { kind: 'window-change', rows: 50, cols: 132 },
    ]);
    assert.deepEqual(raw, [true, false], 'raw mode on, then restored');
    assert.equal(resize, undefined, 'the resize listener is removed afterwards');
  });
});

describe('ssh: bad input', () => {
  it('an unknown host name is exit 2 with the list of names, before anything connects', async () => {
    const r = await runMain(['ssh', '-i', 'inventory/lab.yaml', '-F', 'none', 'sql9', '--', 'true']);
    assert.equal(r.code, ExitCode.badInput);
    assert.match(r.stderr, /unknown host "sql9" \(hosts of this inventory: airflow, scheduler2, .*sql1, sql2, sql3\)/);
  });
});
