import assert from 'node:assert/strict';
import { readdirSync, rmSync, symlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sh } from '../../src/core/cmd.js';
import { UnreachableError } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import { ConnectionLostError, STDIN_SCRIPT, SudoRefusedError } from '../../src/ssh/pool.js';
import { trustedServer, type Fixture } from './helpers/fixture.js';
import { knownHostsLine, type TestSshServer } from './helpers/server.js';

describe('exec', () => {
  let f: Fixture;
  let server: TestSshServer;
  before(async () => ({ f, server } = await trustedServer()));
  after(() => f.cleanup());

  it('returns stdout, stderr and the exit code, feeds stdin, and reuses one TCP connection', async () => {
    const pool = f.pool([f.host(server)]);
    const conn = await pool.connect('h1');
    assert.equal(conn.host, 'h1');

    const a = await conn.exec(sh`echo out; echo err >&2; exit 0`);
    assert.deepEqual(a, { code: 0, stdout: 'out\n', stderr: 'err\n' });
    const b = await conn.exec(sh`echo nope >&2; exit 3`);
    assert.deepEqual(b, { code: 3, stdout: '', stderr: 'nope\n' });
    const c = await conn.exec(sh`cat`, { stdin: 'hello\nwörld\n' });
    assert.equal(c.stdout, 'hello\nwörld\n');
    const d = await conn.exec(sh`wc -c`, { stdin: Buffer.alloc(200_000, 'x') });
    assert.equal(d.stdout.trim(), '200000');
    const e = await conn.exec(sh`cat`); // no stdin: EOF at once, no hang
    assert.deepEqual(e, { code: 0, stdout: '', stderr: '' });

    // Quoting survives the `sh -c WORD` wrapping.
    const tricky = `it's "$HOME" \`x\` ; $(nope) \\ end`;
    const q = await conn.exec(sh`printf '%s\n' ${tricky}`);
    assert.equal(q.stdout, `${tricky}\n`);
    assert.ok(server.commands.every((cmd) => cmd.startsWith('sh -c ')), server.commands.join('\n'));

    // Many commands, in parallel and through repeated connect() calls: still one connection.
    const again = await Promise.all([pool.connect('h1'), pool.connect('h1')]);
    assert.ok(again.every((x) => x === conn));
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => conn.exec(sh`echo ${i}`)));
    assert.deepEqual(
      many.map((r) => r.stdout),
      Array.from({ length: 20 }, (_, i) => `${i}\n`),
    );
    assert.equal(server.tcpConnections, 1);
  });

  it('sends a command that carries a secret on stdin, never in the exec request or any argv; exit codes and trailing newlines survive', async () => {
    const pool = f.pool([f.host(server, { name: 'h5' })]);
    const conn = await pool.connect('h5');
    const pw = new Secret("s3cr3t 'value'");
    const before = server.commands.length;
    // The shell that runs it reports its own argv; a here-document ends the script (its last newline matters).
    const r = await conn.exec(sh`printf '%s\n' ${pw}; tr '\0' ' ' </proc/$$/cmdline; echo; cat; echo "stdin at EOF"; cat <<'END'
last line
END
exit 5`);
    assert.equal(r.code, 5, r.stderr);
    const [value, argv, ...rest] = r.stdout.split('\n');
    assert.equal(value, "s3cr3t 'value'");
    assert.doesNotMatch(argv ?? '', /s3cr3t/, `the running shell's argv: ${argv}`);
    assert.deepEqual(rest, ['stdin at EOF', 'last line', '']);
    const sent = server.commands.slice(before);
    assert.deepEqual(sent, [`sh -c '${STDIN_SCRIPT.replace(/'/g, `'\\''`)}'`]);
    // Without a secret, the command is the exec request itself (one `sh -c WORD`, stdin free for the command).
    assert.equal((await conn.exec(sh`echo plain`)).stdout, 'plain\n');
    assert.equal(server.commands.at(-1), "sh -c 'echo plain'");
    // A secret-bearing command that has stdin of its own keeps it (and the old way).
    assert.equal((await conn.exec(sh`cat; printf '%s' ${pw} >/dev/null`, { stdin: 'own input' })).stdout, 'own input');
  });

  it('abandons a command after timeoutSec with code null and keeps the connection usable', async () => {
    const pool = f.pool([f.host(server, { name: 'h2' })]);
    const conn = await pool.connect('h2');
    const t0 = Date.now();
    const r = await conn.exec(sh`echo started; sleep 20`, { timeoutSec: 0.3 });
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(r.code, null);
    assert.equal(r.stdout, 'started\n');
    assert.match(r.stderr, /abandoned after 0\.3 s/);
    assert.equal((await conn.exec(sh`echo still here`)).stdout, 'still here\n');
  });

  it('rejects promptly, naming the host, when the connection drops during a long command', async () => {
    const pool = f.pool([f.host(server, { name: 'h3' })]);
    const conn = await pool.connect('h3');
    server.onExec = (cmd) => {
      if (cmd.includes('sleep 30')) setTimeout(() => server.dropAll(), 150);
    };
    const t0 = Date.now();
    try {
      await assert.rejects(conn.exec(sh`sleep 30`), (e: unknown) => {
        assert.ok(e instanceof ConnectionLostError);
        assert.match(e.message, /host h3 \(127\.0\.0\.1\)/);
        assert.match(e.message, /connection .* was lost/);
        return true;
      });
    } finally {
      server.onExec = null;
    }
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    // Further use fails fast the same way; a new connect() opens a fresh connection.
    await assert.rejects(conn.exec(sh`true`), ConnectionLostError);
    const before = server.tcpConnections;
    const fresh = await pool.connect('h3');
    assert.notEqual(fresh, conn);
    assert.equal((await fresh.exec(sh`echo back`)).stdout, 'back\n');
    assert.equal(server.tcpConnections, before + 1);
  });
});

describe('sudo', () => {
  let f: Fixture;
  let server: TestSshServer;
  before(async () => ({ f, server } = await trustedServer()));
  after(() => f.cleanup());

  it('wraps every command in `sudo -n sh -c` for a non-root user', async () => {
    server.sudo = 'pass';
    const pool = f.pool([f.host(server, { user: 'deploy' })]);
    const conn = await pool.connect('h1');
    const r = await conn.exec(sh`echo ${'a b'}; exit 4`);
    assert.deepEqual(r, { code: 4, stdout: 'a b\n', stderr: '' });
    assert.ok(server.users.includes('deploy'));
    assert.ok(server.commands.length >= 2);
    for (const cmd of server.commands) assert.match(cmd, /^sudo -n sh -c /);
    assert.equal(server.commands.at(-1), "sudo -n sh -c 'echo '\\''a b'\\''; exit 4'");
  });

  it('fails clearly when sudo wants a password', async () => {
    server.sudo = 'password';
    const pool = f.pool([f.host(server, { name: 'web1', user: 'deploy' })]);
    await assert.rejects(pool.connect('web1'), (e: unknown) => {
      assert.ok(e instanceof SudoRefusedError);
      assert.ok(e instanceof UnreachableError);
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /user deploy on host web1 needs passwordless sudo \(NOPASSWD\) for airflow-ha/);
      assert.match(e.message, /a password is required/);
      return true;
    });
  });
});

describe('put', () => {
  let f: Fixture;
  let server: TestSshServer;
  before(async () => ({ f, server } = await trustedServer()));
  after(() => f.cleanup());

  it('as root: writes content, mode and owner/group atomically, leaving no temp file', async () => {
    const dir = join(f.root, 'etc-root');
    await mkdir(dir);
    const path = join(dir, 'app.conf');
    await writeFile(path, 'old\n');
    const conn = await f.pool([f.host(server)]).connect('h1');
    await conn.put(path, Buffer.from('new content\n'), { mode: '0640', owner: '1234', group: '2345' });
    assert.equal(await readFile(path, 'utf8'), 'new content\n');
    const st = await stat(path);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 2345);
    assert.deepEqual(await readdir(dir), ['app.conf']);

    // An empty file and a new file work too.
    await conn.put(join(dir, 'empty'), Buffer.alloc(0), { mode: '0600', owner: 'root', group: 'root' });
    assert.equal((await stat(join(dir, 'empty'))).size, 0);
    assert.deepEqual((await readdir(dir)).sort(), ['app.conf', 'empty']);
  });

  it('as root: a failing chown leaves the old file and no temp file, and names the host', async () => {
    const dir = join(f.root, 'etc-fail');
    await mkdir(dir);
    const path = join(dir, 'app.conf');
    await writeFile(path, 'old\n');
    const conn = await f.pool([f.host(server)]).connect('h1');
    await assert.rejects(conn.put(path, Buffer.from('new\n'), { mode: '0644', owner: 'no-such-user-xyz', group: 'root' }), (e: unknown) => {
      assert.match(String(e), /host h1 .*could not put .*app\.conf/);
      return true;
    });
    assert.equal(await readFile(path, 'utf8'), 'old\n');
    assert.deepEqual(await readdir(dir), ['app.conf']);
  });

  it('as a sudo user: uploads to the user temp dir, then installs with owner, mode and rename', async () => {
    server.sudo = 'pass';
    const dir = join(f.root, 'etc-user');
    const userTmp = join(f.root, 'usertmp');
    await mkdir(dir);
    await mkdir(userTmp);
    const path = join(dir, 'app.conf');
    await writeFile(path, 'old\n');
    const conn = await f.pool([f.host(server, { user: 'deploy' })], { userTempDir: userTmp }).connect('h1');
    await conn.put(path, Buffer.from('via sudo\n'), { mode: '0604', owner: '1001', group: '1002' });
    assert.equal(await readFile(path, 'utf8'), 'via sudo\n');
    const st = await stat(path);
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o604, 1001, 1002]);
    assert.deepEqual(await readdir(dir), ['app.conf']);
    assert.deepEqual(await readdir(userTmp), []);
    // install(1) copies into the root-only stage; the target folder only ever sees a rename.
    assert.match(server.commands.at(-1) ?? '', /^sudo -n sh -c 'install -o 1001 -g 1002 -m 0604 -- \S+ \S+\.stage\/[0-9a-f]+\.upload && /);
  });

  it('keeps the old content when the connection drops during the upload', async () => {
    const dir = join(f.root, 'etc-drop');
    await mkdir(dir);
    const path = join(dir, 'big.bin');
    await writeFile(path, 'old\n');
    const conn = await f.pool([f.host(server, { name: 'h9' })]).connect('h9');
    server.dropAfterSftpWrites = server.sftpWrites + 1;
    try {
      await assert.rejects(conn.put(path, Buffer.alloc(1024 * 1024, 'y'), { mode: '0644', owner: 'root', group: 'root' }), (e: unknown) => {
        assert.ok(e instanceof ConnectionLostError, String(e));
        assert.match(e.message, /host h9 \(127\.0\.0\.1\) was lost while uploading .*big\.bin/);
        return true;
      });
    } finally {
      server.dropAfterSftpWrites = null;
    }
    assert.equal(await readFile(path, 'utf8'), 'old\n');
    // Only the (partial) temp file may remain beside it, never the target itself.
    for (const name of await readdir(dir)) assert.match(name, /^(big\.bin|\.big\.bin\.airflow-ha-[0-9a-f]+\.tmp)$/);
  });

  it('as root: a temp name swapped for a symlink in the target folder chowns and chmods nothing through it', async () => {
    // A folder another account owns (airflow's, rabbitmq's): that account may replace any name in
    // it at any moment. It replaces each airflow-ha temp file it sees by a symlink to a root file.
    const dir = join(f.root, 'svc-owned');
    await mkdir(dir);
    const victim = join(f.root, 'shadow');
    await writeFile(victim, 'root only\n', { mode: 0o600 });
    const path = join(dir, 'app.conf');
    const conn = await f.pool([f.host(server, { name: 'h7' })]).connect('h7');
    const stage = join(f.root, '.stage');
    // An earlier test's dropped connection may have left its partial upload there.
    const leftBefore = await readdir(stage).catch(() => []);
    let swapped = 0;
    server.beforeExec = () => {
      for (const name of readdirSync(dir).filter((n) => n.includes('.airflow-ha-'))) {
        rmSync(join(dir, name));
        symlinkSync(victim, join(dir, name));
        swapped += 1;
      }
    };
    try {
      await conn.put(path, Buffer.from('new content\n'), { mode: '0644', owner: '1234', group: '2345' });
    } finally {
      server.beforeExec = null;
    }
    const v = await stat(victim);
    assert.deepEqual([v.uid, v.gid, v.mode & 0o7777], [0, 0, 0o600], 'the file behind the symlink keeps root:root 0600');
    assert.equal(swapped, 0, 'no temp file waits in the target folder while a command runs');
    const st = await lstat(path);
    assert.ok(st.isFile(), 'the target is the uploaded file, not a symlink');
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1234, 2345, 0o644]);
    assert.equal(await readFile(path, 'utf8'), 'new content\n');
    assert.equal((await stat(stage)).mode & 0o7777, 0o700, 'the stage folder is root-only');
    assert.deepEqual(await readdir(stage), leftBefore, 'nothing of this upload is left in the stage');
    assert.match(server.commands.at(-1) ?? '', /chown -h -- 1234:2345 .*\.stage\/[0-9a-f]+\.upload/);
  });

  it('refuses a stage folder that is a symlink, naming the host and the folder', async () => {
    const elsewhere = join(f.root, 'elsewhere');
    await mkdir(elsewhere);
    const stage = join(f.root, 'linked-stage');
    await symlink(elsewhere, stage);
    const conn = await f.pool([f.host(server, { name: 'h8' })], { stageDir: stage }).connect('h8');
    await assert.rejects(conn.put(join(f.root, 'x.conf'), Buffer.from('x\n'), { mode: '0644', owner: 'root', group: 'root' }), (e: unknown) => {
      assert.match(String(e), /host h8 \(127\.0\.0\.1\): cannot use the upload stage folder .*linked-stage: .*symlink/);
      return true;
    });
    assert.deepEqual(await readdir(elsewhere), []);
  });

  it('refuses relative paths and bad modes', async () => {
    const conn = await f.pool([f.host(server)]).connect('h1');
    await assert.rejects(conn.put('etc/x', Buffer.from(''), { mode: '0644', owner: 'root', group: 'root' }), /absolute/);
    await assert.rejects(conn.put('/x', Buffer.from(''), { mode: '644; rm', owner: 'root', group: 'root' }), /mode/);
    await assert.rejects(conn.put('/x', Buffer.from(''), { mode: '0644', owner: 'a b', group: 'root' }), /owner/);
  });
});

describe('jump host and close', () => {
  let f: Fixture;
  let target: TestSshServer;
  before(async () => ({ f, server: target } = await trustedServer()));
  after(() => f.cleanup());

  it('reaches a host through a jump host (forwardOut + sock)', async () => {
    const jump = await f.server();
    await f.trust(knownHostsLine(target.port, target.hostKey), knownHostsLine(jump.port, jump.hostKey));
    const jumpCfg = f.host(jump, { name: 'bastion' });
    const pool = f.pool([f.host(target, { name: 'inner', jump: jumpCfg }), f.host(target, { name: 'inner2', jump: jumpCfg })]);
    const [a, b] = await Promise.all([pool.connect('inner'), pool.connect('inner2')]);
    assert.equal((await a.exec(sh`echo through`)).stdout, 'through\n');
    assert.equal((await b.exec(sh`echo again`)).stdout, 'again\n');
    assert.equal(jump.tcpConnections, 1); // one shared jump connection
    assert.equal(target.tcpConnections, 2); // one tunnelled connection per inventory host
    assert.equal(jump.commands.length, 0);
    assert.ok(f.events.some((e) => e.kind === 'connected' && e.host === 'inner' && e.via === 'bastion'));

    await pool.close();
    await assert.rejects(pool.connect('inner'), /closed/);
    await assert.rejects(a.exec(sh`true`), ConnectionLostError);
  });
});
