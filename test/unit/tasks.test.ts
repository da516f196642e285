import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sh } from '../../src/core/cmd.js';
import type { Op } from '../../src/core/op.js';
import { FactSet, type Fact } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { gatherFacts } from '../../src/run/facts.js';
import { command, waitCheck, waitFor, waitLoop } from '../../src/tasks/command.js';
import { directory, file, managedBlock, pathFact, sha256, withBlock } from '../../src/tasks/file.js';
import { packages, packagesFact, aptListsFact } from '../../src/tasks/package.js';
import { service, serviceFact, unit } from '../../src/tasks/systemd.js';
import { sysctl, sysctlFact, user, userFact, group, groupFact } from '../../src/tasks/system.js';
import type { Task, TaskPlan } from '../../src/tasks/task.js';
import { LocalConnection, tempDir } from '../helpers/local.js';

const debian: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'h1', container: false };
const rocky: HostFacts = { osId: 'rocky', osVersion: '9.4', family: 'rhel', hostname: 'h1', container: false };

/** A FactSet from canned outputs: [fact, stdout, exit code]. */
function factsOf(...entries: [Fact<unknown>, string, number?][]): FactSet {
  return new FactSet(new Map(entries.map(([f, stdout, code]) => [f.key, { stdout, code: code ?? 0 }])));
}

const opText = (ops: Op[]) => ops.map((o) => (o.kind === 'exec' ? o.cmd.toString() : `put ${o.path} ${o.owner}:${o.group} ${o.mode}`));

/** Plans a task against the real local machine (facts gathered by the real fact script), applies it, plans again. */
async function converge(task: Task, conn = new LocalConnection()): Promise<{ first: TaskPlan; second: TaskPlan }> {
  const first = task.plan(await gatherFacts(conn, task.facts(debian)), debian);
  for (const op of first.ops) {
    if (op.kind === 'put') await conn.put(op.path, op.content, op);
    else {
      const r = await conn.exec(op.cmd);
      assert.equal(r.code, 0, `op failed: ${op.cmd.toString()}\n${r.stderr}`);
    }
  }
  const second = task.plan(await gatherFacts(conn, task.facts(debian)), debian);
  return { first, second };
}

test('file: create, then no-op; content change gives a unified diff; mode change only chmods', async () => {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    const p = path.join(dir, 'app.conf');
    const { first, second } = await converge(file({ path: p, content: 'a=1\nb=2\n', mode: '0640' }));
    assert.equal(first.changed, true);
    assert.deepEqual(first.changes, [`create ${p}`]);
    assert.match(first.diff ?? '', /^\+a=1$/m);
    assert.equal(second.changed, false);
    assert.deepEqual(second.ops, []);
    assert.equal(await readFile(p, 'utf8'), 'a=1\nb=2\n');
    assert.equal((await stat(p)).mode & 0o777, 0o640);

    const edit = await converge(file({ path: p, content: 'a=1\nb=3\n', mode: '0640' }));
    assert.match(edit.first.diff ?? '', /^-b=2$/m);
    assert.match(edit.first.diff ?? '', /^\+b=3$/m);
    assert.match(edit.first.diff ?? '', /^ a=1$/m);
    assert.equal(edit.second.changed, false);

    const chmodOnly = await converge(file({ path: p, content: 'a=1\nb=3\n', mode: '0600' }));
    assert.deepEqual(opText(chmodOnly.first.ops), [`chown -h root:root ${p} && chmod 0600 ${p}`]);
    assert.equal(chmodOnly.first.diff, undefined);
    assert.equal((await stat(p)).mode & 0o777, 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('file: refuses to replace a directory; validate runs before the put', async () => {
  const dir = tempDir();
  await mkdir(path.join(dir, 'sub'), { recursive: true });
  try {
    const t = file({ path: path.join(dir, 'sub'), content: 'x' });
    const conn = new LocalConnection();
    const dirFacts = await gatherFacts(conn, t.facts(debian));
    assert.throws(() => t.plan(dirFacts, debian), /is a directory, not a regular file/);
    const v = file({ path: path.join(dir, 'v.cfg'), content: 'x\n', validate: (tmp) => sh`grep -q x ${tmp}` });
    const plan = v.plan(await gatherFacts(conn, v.facts(debian)), debian);
    assert.deepEqual(plan.ops.map((o) => o.kind), ['exec', 'put', 'exec', 'put']);
    // The copy waits in root's own folder (made 0700 first, a symlink refused), not under a guessable /tmp name.
    assert.match(opText(plan.ops)[0] ?? '', /^d=\/var\/lib\/airflow-ha\/tmp; if \[ -L "\$d" \].*chmod 0700 -- "\$d"$/);
    assert.match(opText(plan.ops)[2] ?? '', /^\( grep -q x \/var\/lib\/airflow-ha\/tmp\/validate-[0-9a-f]{16} \); rc=\$\?; rm -f /);
    // A check that calls `exit` itself still leaves no temp copy behind.
    const scratch = path.join(dir, 'scratch');
    const exiting = file({ path: path.join(dir, 'w.cfg'), content: 'x\n', validate: () => sh`exit 0`, scratchDir: scratch });
    const ex = exiting.plan(await gatherFacts(conn, exiting.facts(debian)), debian);
    const [mk, put, check] = ex.ops;
    assert.ok(mk?.kind === 'exec' && put?.kind === 'put' && check?.kind === 'exec');
    assert.equal((await conn.exec(mk.cmd)).code, 0);
    assert.equal((await stat(scratch)).mode & 0o7777, 0o700);
    await conn.put(put.path, put.content, put);
    assert.equal((await conn.exec(check.cmd)).code, 0);
    assert.equal((await conn.exec(sh`test -e ${put.path}`)).code, 1, 'the temp copy is removed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('pathFact parses absent, present-with-same-sha (no content) and differing content', () => {
  const f = pathFact('/etc/x', 'abc');
  assert.deepEqual(f.parse('absent\n', 0), { exists: false });
  const same = f.parse('present|644|root|root|regular file|abc\n', 0);
  assert.equal(same.content, undefined);
  assert.equal(same.mode, '644');
  const other = f.parse(`present|600|a|b|regular file|def\n${Buffer.from('old').toString('base64')}`, 0);
  assert.equal(other.content?.toString(), 'old');
  assert.equal(other.owner, 'a');
});

test('directory: create with owner/mode, then no-op', async () => {
  const dir = tempDir();
  try {
    const { first, second } = await converge(directory({ path: path.join(dir, 'a', 'b'), mode: '0750' }));
    assert.deepEqual(opText(first.ops), [`install -d -m 0750 -o root -g root ${path.join(dir, 'a', 'b')}`]);
    assert.equal(second.changed, false);
    assert.equal((await stat(path.join(dir, 'a', 'b'))).mode & 0o777, 0o750);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('managed block: appended, replaced in place, lines outside kept, then no-op', async () => {
  assert.equal(withBlock('127.0.0.1 localhost\n', 'c', '10.0.0.1 a'), '127.0.0.1 localhost\n# BEGIN airflow-ha c\n10.0.0.1 a\n# END airflow-ha c\n');
  const replaced = withBlock('x\n# BEGIN airflow-ha c\nold\n# END airflow-ha c\ny\n', 'c', 'new');
  assert.equal(replaced, 'x\n# BEGIN airflow-ha c\nnew\n# END airflow-ha c\ny\n');
  assert.equal(withBlock('no newline', 'c', 'b'), 'no newline\n# BEGIN airflow-ha c\nb\n# END airflow-ha c\n');

  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    const p = path.join(dir, 'hosts');
    await writeFile(p, '127.0.0.1 localhost\n::1 localhost\n', { mode: 0o644 });
    const { first, second } = await converge(managedBlock({ path: p, id: 'cluster t', block: '10.0.0.1 a\n10.0.0.2 b' }));
    assert.equal(first.changed, true);
    assert.match(first.diff ?? '', /^\+# BEGIN airflow-ha cluster t$/m);
    assert.equal(second.changed, false);
    const again = await converge(managedBlock({ path: p, id: 'cluster t', block: '10.0.0.1 a' }));
    assert.match(again.first.diff ?? '', /^-10\.0\.0\.2 b$/m);
    assert.equal(await readFile(p, 'utf8'), '127.0.0.1 localhost\n::1 localhost\n# BEGIN airflow-ha cluster t\n10.0.0.1 a\n# END airflow-ha cluster t\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('packages (Debian): installs only what is missing, updates lists on a fresh host, pins are held', () => {
  const t = packages({ names: ['haproxy', 'chrony'], versions: { haproxy: '2.6' } });
  const pf = packagesFact('debian', ['haproxy', 'chrony']);
  const none = t.plan(factsOf([pf, ''], [aptListsFact, '0\n', 1]), debian);
  assert.deepEqual(opText(none.ops), [
    'apt-get update -q',
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold 'haproxy=2.6*' chrony",
    'apt-mark hold haproxy',
  ]);
  const partial = t.plan(factsOf([pf, 'haproxy\tinstall ok installed\t2.6.12-1\nchrony\tdeinstall ok config-files\t4.3\n'], [aptListsFact, '3\n']), debian);
  assert.deepEqual(partial.changes, ['install chrony']);
  const all = t.plan(factsOf([pf, 'haproxy\tinstall ok installed\t2.6.12-1\nchrony\tinstall ok installed\t4.3-2\n'], [aptListsFact, '3\n']), debian);
  assert.equal(all.changed, false);
  assert.deepEqual(all.ops, []);
  const wrongPin = t.plan(factsOf([pf, 'haproxy\tinstall ok installed\t2.8.1-1\nchrony\tinstall ok installed\t4.3-2\n'], [aptListsFact, '3\n']), debian);
  assert.deepEqual(wrongPin.changes, ['install haproxy 2.6 (was 2.8.1-1)']);
});

test('packages (RHEL): dnf with versionlock; absent removes only installed ones', () => {
  const pf = packagesFact('rhel', ['etcd']);
  const t = packages({ names: ['etcd'], versions: { etcd: '3.5.17' } });
  assert.deepEqual(opText(t.plan(factsOf([pf, 'package etcd is not installed\n', 1]), rocky).ops), [
    "dnf install -y -q 'etcd-3.5.17*'",
    'dnf versionlock add etcd',
  ]);
  const gone = packages({ names: ['etcd', 'x'], state: 'absent' });
  const pf2 = packagesFact('rhel', ['etcd', 'x']);
  assert.deepEqual(opText(gone.plan(factsOf([pf2, 'etcd\tinstall ok installed\t3.5.17-1.el9\n']), rocky).ops), ['dnf remove -y -q etcd']);
  assert.equal(gone.plan(factsOf([pf2, '']), rocky).changed, false);
});

test('service: enable+start when needed; no-op when enabled and active; stop', () => {
  const sf = serviceFact('haproxy');
  const t = service({ name: 'haproxy' });
  assert.deepEqual(opText(t.plan(factsOf([sf, 'disabled\ninactive\n']), debian).ops), ['systemctl enable haproxy', 'systemctl start haproxy']);
  assert.equal(t.plan(factsOf([sf, 'enabled\nactive\n']), debian).changed, false);
  assert.equal(t.plan(factsOf([sf, 'static\nactive\n']), debian).changed, false);
  assert.deepEqual(opText(service({ name: 'haproxy', enabled: false, state: 'stopped' }).plan(factsOf([sf, 'enabled\nactive\n']), debian).ops), [
    'systemctl disable haproxy',
    'systemctl stop haproxy',
  ]);
});

test('unit: a changed unit file reloads systemd and notifies a restart; unchanged is a no-op', () => {
  const u = unit({ name: 'x.service', content: '[Service]\nExecStart=/bin/true\n' });
  const [pf] = u.facts(debian) as [Fact<unknown>];
  const p = u.plan(factsOf([pf, 'absent\n']), debian);
  assert.deepEqual(opText(p.ops), ['put /etc/systemd/system/x.service root:root 0644', 'systemctl daemon-reload']);
  assert.deepEqual(p.notify.map((h) => h.id), ['restart:x.service']);
  const digest = sha256(u.files?.(debian)[0]?.content ?? Buffer.alloc(0));
  const same = u.plan(factsOf([pf, `present|644|root|root|regular file|${digest}\n`]), debian);
  assert.equal(same.changed, false);
  assert.deepEqual(same.notify, []);
});

test('user and group: created once; missing supplementary group appended', () => {
  const gf = groupFact('airflow');
  assert.deepEqual(opText(group({ name: 'airflow', system: true }).plan(factsOf([gf, '', 2]), debian).ops), ['groupadd --system airflow']);
  assert.equal(group({ name: 'airflow' }).plan(factsOf([gf, 'airflow:x:999:\n']), debian).changed, false);
  const uf = userFact('airflow');
  const u = user({ name: 'airflow', system: true, home: '/opt/airflow', primaryGroup: 'airflow', groups: ['airflow', 'ssl-cert'] });
  assert.deepEqual(opText(u.plan(factsOf([uf, '', 2]), debian).ops), [
    'useradd --system --create-home --home-dir /opt/airflow --shell /usr/sbin/nologin --gid airflow --groups airflow,ssl-cert airflow',
  ]);
  const existing = 'airflow:x:998:998::/opt/airflow:/usr/sbin/nologin\nairflow\n';
  assert.deepEqual(opText(u.plan(factsOf([uf, existing]), debian).ops), ['usermod --append --groups ssl-cert airflow']);
  const full = 'airflow:x:998:998::/opt/airflow:/usr/sbin/nologin\nairflow ssl-cert\n';
  assert.equal(u.plan(factsOf([uf, full]), debian).changed, false);
});

test('sysctl: file and live value; only the differing keys are set', () => {
  const t = sysctl({ file: '60-t.conf', values: { 'net.ipv4.ip_nonlocal_bind': '1', 'vm.swappiness': '10' } });
  const [ff, lf] = t.facts(debian) as [Fact<unknown>, Fact<unknown>];
  assert.equal(lf.key, sysctlFact(['vm.swappiness', 'net.ipv4.ip_nonlocal_bind']).key);
  const p = t.plan(factsOf([ff, 'absent\n'], [lf, 'net.ipv4.ip_nonlocal_bind=0\nvm.swappiness=10\n']), debian);
  assert.deepEqual(opText(p.ops), ['put /etc/sysctl.d/60-t.conf root:root 0644', 'sysctl -q -w net.ipv4.ip_nonlocal_bind=1']);
  assert.match(p.diff ?? '', /^\+net\.ipv4\.ip_nonlocal_bind = 1$/m);
});

test('command: guarded by creates/unless; unguarded always runs', async () => {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    const marker = path.join(dir, 'done');
    const t = command({ name: 'init', cmd: sh`touch ${marker}`, creates: marker });
    const { first, second } = await converge(t);
    assert.equal(first.changed, true);
    assert.equal(second.changed, false);
    const unless = command({ name: 'u', cmd: sh`false`, unless: sh`test -e ${marker}` });
    assert.equal(unless.plan(await gatherFacts(new LocalConnection(), unless.facts(debian)), debian).changed, false);
    const always = command({ name: 'a', cmd: sh`true` });
    assert.equal(always.plan(factsOf(), debian).changed, true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('waitFor: one remote loop that passes, or fails with a timeout message', async () => {
  const conn = new LocalConnection();
  const ok = await conn.exec(waitLoop({ cmd: sh`true`, timeoutSec: 2 }));
  assert.equal(ok.code, 0);
  const bad = await conn.exec(waitLoop({ cmd: sh`false`, timeoutSec: 1, intervalSec: 0.2 }));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /timed out after 1 s waiting for "false"/);
  const t = waitFor({ port: 1, timeoutSec: 1 });
  const plan = t.plan(factsOf(), debian);
  assert.equal(plan.changed, false);
  assert.equal(plan.ops.length, 1);
});

test('waitFor http: a 2xx status passes, a 5xx or a closed port fails (no interpreter on the host)', async () => {
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/ok%20path?x=1' ? 200 : 500;
    res.end('body');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const conn = new LocalConnection();
    assert.equal((await conn.exec(waitCheck({ http: `http://127.0.0.1:${port}/ok%20path?x=1`, timeoutSec: 1 }))).code, 0);
    assert.equal((await conn.exec(waitCheck({ http: `http://127.0.0.1:${port}/fail`, timeoutSec: 1 }))).code, 1);
  } finally {
    await new Promise((r) => server.close(r));
  }
  assert.notEqual((await new LocalConnection().exec(waitCheck({ http: `http://127.0.0.1:${port}/`, timeoutSec: 1 }))).code, 0);
});
