/**
 * DAG storage, FTP and the SSH target offline: the files the `dags` playbook renders for the seed
 * (which uses NFS) pinned as golden files, the first-run scripts of the hosts it touches on
 * Rocky/RHEL 9 (golden, shellcheck), units checked by `systemd-analyze verify`, and the pure parts:
 * releases against this machine's filesystem, the tar writer, SHA-512 crypt, unit-name escaping,
 * known_hosts lines, the connections file, the key pair and the DAG folder reader.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha512Crypt } from '../../src/core/crypt.js';
import { mountUnitName, nfsExports } from '../../src/components/dags.js';
import { ftpPasswordHash } from '../../src/components/ftp.js';
import { connectionsJson, knownHostsLines } from '../../src/components/target.js';
import type { HostFacts } from '../../src/facts/host.js';
import type { Host } from '../../src/inventory/schema.js';
import { gatherFacts } from '../../src/run/facts.js';
import { renderFiles } from '../../src/cli/render.js';
import { readTree } from '../../src/cli/operator.js';
import { loadOrCreateKeypair } from '../../src/ssh/keypair.js';
import { compileCheck, fileTree, release, tarGz, treeRevision, type FileTree, type TreeFile } from '../../src/tasks/release.js';
import type { Task } from '../../src/tasks/task.js';
import { dags } from '../../playbooks/dags.js';
import { hostProbes } from '../../src/status/checks.js';
import { FIXED_HOST_KEY, assertGolden, fixedOperator as operator, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { LocalConnection, tempDir } from '../helpers/local.js';
import { assertShellcheck, firstRunScripts } from '../helpers/scripts.js';

const debian: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'fresh', container: false };
const rocky: HostFacts = { osId: 'rocky', osVersion: '9.4', family: 'rhel', hostname: 'fresh', container: false };

async function seedFiles(family: 'debian' | 'rhel') {
  const inv = await seedInventory();
  for (const h of inv.hosts) h.vars = { ...h.vars, interface: 'eth0' };
  // /etc/hostname and /etc/hosts are the identity step's, pinned by the base goldens.
  return renderFiles(dags, inv, fixedSecrets, family, operator).filter((f) => !['/etc/hostname', '/etc/hosts'].includes(f.path));
}

test('golden: every file the dags playbook gives the seed hosts (NFS mode, Debian)', async () => {
  const files = await seedFiles('debian');
  for (const f of files) await assertGolden(`dags/${f.host}${f.path}`, f.content);
  const paths = new Set(files.map((f) => `${f.host}:${f.path}`));
  for (const p of [
    'ftp:/etc/exports.d/airflow-ha-dags.exports',
    'nfs2:/etc/exports.d/airflow-ha-dags.exports',
    'nfs2:/etc/keepalived/keepalived.conf',
    'nfs2:/etc/systemd/system/airflow-ha-dags-pull.timer',
    'ftp:/etc/vsftpd.conf',
    'worker1:/etc/systemd/system/opt-airflow-dags.mount',
    'scheduler2:/etc/systemd/system/opt-airflow-dags.mount',
    'worker1:/opt/airflow/.ssh/known_hosts',
    'worker1:/etc/airflow-ha/airflow-connections.json',
    'card1:/home/airflow_svc/.ssh/authorized_keys',
  ]) assert.ok(paths.has(p), `renders ${p}`);
  // The NFS clients are exactly the Airflow hosts; the target and the data plane get no mount.
  const mounts = files.filter((f) => f.path.endsWith('.mount')).map((f) => f.host).sort();
  assert.deepEqual(mounts, ['airflow', 'ftp', 'haproxy2', 'nfs2', 'scheduler2', 'worker1']);
  // keepalived of the nfs pair: the nfs VIP with its nfs-server check, each the other's peer.
  const ka = files.find((f) => f.host === 'ftp' && f.path === '/etc/keepalived/keepalived.conf')?.content.toString() ?? '';
  assert.match(ka, /192\.168\.83\.220\/24 dev eth0/);
  assert.match(ka, /is-active --quiet nfs-server/);
  assert.match(ka, /unicast_peer \{\n\s+192\.168\.83\.150\n/);
  const conn = JSON.parse(files.find((f) => f.path === '/etc/airflow-ha/airflow-connections.json')?.content.toString() ?? '{}') as Record<string, { extra: string }>;
  assert.equal(JSON.parse(conn['target_ssh']?.extra ?? '{}').host_key, FIXED_HOST_KEY);
});

test('golden: vsftpd.conf and rsyncd.conf on Rocky/RHEL 9', async () => {
  const files = await seedFiles('rhel');
  for (const p of ['/etc/vsftpd/vsftpd.conf', '/etc/rsyncd.conf']) {
    const f = files.find((x) => x.host === 'ftp' && x.path === p);
    assert.ok(f, p);
    await assertGolden(`dags/rhel/ftp${p}`, f.content);
  }
});

/** The hosts whose first run does more than the identity step. */
const SCRIPT_HOSTS = ['ftp', 'nfs2', 'worker1', 'scheduler2', 'card1'];

async function scripts(): Promise<Map<string, string>> {
  const inv = await seedInventory();
  for (const h of inv.hosts) h.vars = { ...h.vars, interface: 'eth0' };
  const all = firstRunScripts(dags, inv, rocky, fixedSecrets, 'airflow-ha apply --playbook dags on a fresh Rocky/RHEL 9 host', operator);
  return new Map([...all].filter(([h]) => SCRIPT_HOSTS.includes(h)));
}

test('golden: first-run commands of the nfs, ftp, worker, scheduler and target hosts on Rocky/RHEL 9', async () => {
  const all = await scripts();
  assert.deepEqual([...all.keys()].sort(), [...SCRIPT_HOSTS].sort());
  for (const [host, text] of all) await assertGolden(`dags-scripts/${host}.sh`, text);
  const ftp = all.get('ftp') ?? '';
  assert.match(ftp, /dnf install -y -q nfs-utils rsync rsync-daemon/);
  assert.match(ftp, /chpasswd -e < /, 'the FTP password goes through stdin');
  assert.doesNotMatch(ftp, /fixed-ftpUser-value/, 'never the clear text');
  assert.match(ftp, /vsftpd \/var\/lib\/airflow-ha\/tmp\/validate-[0-9a-f]+ -olisten=NO -olisten_ipv6=NO/);
});

test('every generated script of the dags playbook passes shellcheck, and so does the pull script', async () => {
  for (const [host, text] of await scripts()) assertShellcheck(host, text);
  const pull = (await seedFiles('debian')).find((f) => f.path === '/usr/local/sbin/airflow-ha-dags-pull');
  assert.ok(pull);
  assertShellcheck('airflow-ha-dags-pull', pull.content.toString());
});

test('systemd-analyze verify accepts the rendered units', { skip: spawnSync('systemd-analyze', ['--version']).status !== 0 && 'no systemd-analyze' }, async () => {
  const root = tempDir('ah-units-');
  try {
    // A root with this machine's own units (targets the rendered ones refer to) and the rendered files.
    await mkdir(path.join(root, 'usr/lib/systemd'), { recursive: true });
    execFileSync('cp', ['-a', '/usr/lib/systemd/system', path.join(root, 'usr/lib/systemd/')]);
    const files = (await seedFiles('debian')).filter((f) => f.host === 'nfs2' && (f.path.startsWith('/etc/systemd/system/') || f.path.startsWith('/usr/local/sbin/')));
    assert.equal(files.length, 4);
    const units: string[] = [];
    for (const f of files) {
      const p = path.join(root, f.path);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFile(p, f.content, { mode: parseInt(f.mode, 8) });
      if (p.includes('/systemd/system/')) units.push(p);
    }
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, ...units.map((u) => u.slice(root.length))], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the exports: read-only to the cluster network, the same fsid on both nfs hosts', async () => {
  const inv = await seedInventory();
  assert.match(nfsExports(inv), /^\/srv\/airflow\/dags 192\.168\.83\.0\/24\(ro,sync,no_subtree_check,root_squash,fsid=[0-9a-f-]{36}\)$/m);
});

// ---------------------------------------------------------------------------------------------
// Releases against this machine

const tf = (p: string, text: string, executable = false): TreeFile => ({ path: p, content: Buffer.from(text), executable });

async function apply(conn: LocalConnection, task: Task): Promise<{ changed: boolean; ops: number; error?: string }> {
  const facts = await gatherFacts(conn, [...task.facts(debian)]);
  const plan = task.plan(facts, debian);
  for (const op of plan.ops) {
    if (op.kind === 'put') await conn.put(op.path, op.content, op);
    else {
      const r = await conn.exec(op.cmd);
      if (r.code !== 0) return { changed: plan.changed, ops: plan.ops.length, error: r.stderr };
    }
  }
  return { changed: plan.changed, ops: plan.ops.length };
}

test('release: first run unpacks and links, a re-run does nothing, a new tree switches and keeps the old', async () => {
  const dir = tempDir('ah-release-');
  const conn = new LocalConnection();
  const link = path.join(dir, 'dags');
  const releasesDir = path.join(dir, 'dags-releases');
  const spec = (tree: FileTree) => ({ link, releasesDir, tree, keep: 2, scratchDir: path.join(dir, 'scratch') });
  try {
    await mkdir(link, { recursive: true }); // an empty directory where the link goes is replaced
    const t1 = fileTree([tf('a.py', 'A = 1\n'), tf('sub/b.py', 'B = 2\n', true)]);
    assert.equal((await apply(conn, release(spec(t1)))).changed, true);
    assert.equal(await readFile(path.join(link, 'sub/b.py'), 'utf8'), 'B = 2\n');
    assert.equal((await stat(path.join(link, 'sub/b.py'))).mode & 0o777, 0o755);
    assert.deepEqual(await apply(conn, release(spec(t1))), { changed: false, ops: 0 });

    const t2 = fileTree([tf('a.py', 'A = 2\n')]);
    assert.notEqual(t2.revision, t1.revision);
    await apply(conn, release(spec(t2)));
    assert.equal(path.basename(execFileSync('readlink', [link], { encoding: 'utf8' }).trim()), t2.revision);
    assert.ok((await stat(path.join(releasesDir, t1.revision))).isDirectory(), 'the previous release is kept');
    const t3 = fileTree([tf('a.py', 'A = 3\n')]);
    await apply(conn, release(spec(t3)));
    const left = execFileSync('ls', [releasesDir], { encoding: 'utf8' }).trim().split('\n').sort();
    assert.deepEqual(left, [t2.revision, t3.revision].sort(), 'keep 2: the oldest release is removed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('release: a real directory with files at the link is refused, not replaced', async () => {
  const dir = tempDir('ah-release-');
  try {
    await mkdir(path.join(dir, 'dags'), { recursive: true });
    await writeFile(path.join(dir, 'dags', 'hand.py'), 'X = 1\n');
    const r = await apply(new LocalConnection(), release({ link: path.join(dir, 'dags'), releasesDir: path.join(dir, 'rel'), tree: fileTree([tf('a.py', '')]), keep: 3, scratchDir: path.join(dir, 'scratch') }));
    assert.match(r.error ?? '', /is a directory with files in it/);
    assert.equal(await readFile(path.join(dir, 'dags', 'hand.py'), 'utf8'), 'X = 1\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('compile check: a good tree passes, a syntax error fails naming the file and line', { skip: spawnSync('python3', ['--version']).status !== 0 && 'no python3' }, async () => {
  const dir = tempDir('ah-compile-');
  const spec = (tree: FileTree) => ({ link: path.join(dir, 'dags'), releasesDir: path.join(dir, 'rel'), tree, keep: 3, pythons: ['/nonexistent/python', 'python3'], user: 'nobody', scratchDir: path.join(dir, 'scratch') });
  try {
    await mkdir(dir, { recursive: true });
    const good = await apply(new LocalConnection(), compileCheck(spec(fileTree([tf('ok.py', 'X = 1\n')]))));
    assert.deepEqual(good, { changed: false, ops: 3 });
    const bad = await apply(new LocalConnection(), compileCheck(spec(fileTree([tf('ok.py', 'X = 1\n'), tf('dags/broken.py', 'X = 1\ndef f(:\n')]))));
    assert.match(bad.error ?? '', /dags\/broken\.py/);
    assert.match(bad.error ?? '', /line 2/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('compile check: DAG code never runs as root (runuser, python -I, from /): a compileall.py in the tree is not imported', { skip: spawnSync('python3', ['--version']).status !== 0 && 'no python3' }, async () => {
  const dir = tempDir('ah-compile-');
  const marker = path.join(tempDir('ah-marker-'), 'ran');
  const scratch = path.join(dir, 'scratch');
  // A module named like the one `python -m compileall` imports: run from inside the tree, or with
  // the tree on sys.path, it would be imported instead of the standard library's, as root.
  const evil = `import os\nopen(${JSON.stringify(marker)}, "w").write(str(os.getuid()))\n`;
  const t = fileTree([tf('compileall.py', evil), tf('py_compile.py', evil), tf('dag.py', 'X = 1\n')]);
  const task = compileCheck({ link: path.join(dir, 'dags'), releasesDir: path.join(dir, 'rel'), tree: t, keep: 3, pythons: ['python3'], user: 'nobody', scratchDir: scratch });
  try {
    await mkdir(path.dirname(marker), { recursive: true, mode: 0o777 });
    await chmod(path.dirname(marker), 0o777);
    const conn = new LocalConnection();
    const plan = task.plan(await gatherFacts(conn, [...task.facts(debian)]), debian);
    const texts = plan.ops.map((o) => (o.kind === 'exec' ? o.cmd.render() : `put ${o.path} ${o.owner}:${o.group} ${o.mode}`));
    // The archive waits in root's own folder (0700, a symlink refused), never under a guessable /tmp name.
    assert.match(texts[0] ?? '', /mkdir -p -- "\$d" && chown -h root:root -- "\$d" && chmod 0700 -- "\$d"/);
    assert.equal(texts[1], `put ${scratch}/check-${t.revision}.tgz root:root 0600`);
    assert.match(texts[2] ?? '', /^t=\$\(mktemp -d\) && /);
    assert.match(texts[2] ?? '', /&& cd \/ \|\| exit 1;.*\$\(runuser -u nobody -- "\$py" -I -X pycache_prefix="\$t\/pycache" -m compileall -q "\$t\/tree"/);
    assert.ok(texts.every((x) => !x.includes('/tmp/.airflow-ha')), texts.join('\n'));
    assert.deepEqual(await apply(conn, task), { changed: false, ops: 3 });
    const ran = await readFile(marker, 'utf8').catch(() => undefined);
    assert.notEqual(ran, '0', 'the tree\'s compileall.py ran as root');
    assert.equal(ran, undefined, 'the tree\'s compileall.py is never imported');
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(path.dirname(marker), { recursive: true, force: true });
  }
});

test('release: a releases folder that is a symlink (to a folder full of others) is refused naming it; nothing outside is removed', async () => {
  const dir = tempDir('ah-release-');
  const outside = tempDir('ah-outside-');
  try {
    // What the account could plant while the home was its own: the releases folder as a link to `/`
    // (here: to a folder with folders in it, standing in for /etc, /usr, ...).
    for (const d of ['etc', 'usr', 'var']) await mkdir(path.join(outside, d), { recursive: true });
    await mkdir(dir, { recursive: true });
    await symlink(outside, path.join(dir, 'rel'));
    const t = fileTree([tf('a.py', 'A = 1\n')]);
    const r = await apply(new LocalConnection(), release({ link: path.join(dir, 'dags'), releasesDir: path.join(dir, 'rel'), tree: t, keep: 1, scratchDir: path.join(dir, 'scratch') }));
    assert.match(r.error ?? '', new RegExp(`${path.join(dir, 'rel')} is a symlink, not a directory, or not root's alone.*refusing to unpack, link or remove releases there`));
    assert.deepEqual((await readdir(outside)).sort(), ['etc', 'usr', 'var'], 'nothing outside was removed or written');
    // And a releases folder another account owns (it could swap its entries): refused the same way.
    await rm(path.join(dir, 'rel'));
    await mkdir(path.join(dir, 'rel'));
    execFileSync('chown', ['nobody', path.join(dir, 'rel')]);
    const owned = await apply(new LocalConnection(), release({ link: path.join(dir, 'dags'), releasesDir: path.join(dir, 'rel'), tree: t, keep: 1, scratchDir: path.join(dir, 'scratch') }));
    assert.match(owned.error ?? '', /rel is a symlink, not a directory, or not root's alone/);
    assert.deepEqual(await readdir(path.join(dir, 'rel')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  }
});

test('tarGz: GNU tar lists every file with its mode, long paths through the ustar prefix', () => {
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/file.py`;
  const files = [tf('a.py', 'x'), tf('run.sh', '#!/bin/sh\n', true), tf(long, 'y')];
  const out = execFileSync('tar', ['-tvzf', '-'], { input: tarGz(files), encoding: 'utf8' });
  assert.match(out, /^-rw-r--r-- root\/root\s+1 .* a\.py$/m);
  assert.match(out, /^-rwxr-xr-x .* run\.sh$/m);
  assert.ok(out.includes(long), out);
});

test('treeRevision: content and modes count, order and read time do not; bad paths throw', () => {
  const a = [tf('x.py', '1'), tf('y.py', '2')];
  assert.equal(treeRevision(a), treeRevision([...a].reverse()));
  assert.notEqual(treeRevision(a), treeRevision([tf('x.py', '1'), tf('y.py', '3')]));
  assert.notEqual(treeRevision(a), treeRevision([tf('x.py', '1'), tf('y.py', '2', true)]));
  assert.match(treeRevision(a), /^[0-9a-f]{16}$/);
  assert.throws(() => treeRevision([tf('../x.py', '')]), /relative/);
  assert.throws(() => treeRevision([tf('/etc/x', '')]), /relative/);
});

// ---------------------------------------------------------------------------------------------

test('sha512Crypt: the specification\'s test vector, and what openssl passwd -6 computes', () => {
  assert.equal(sha512Crypt('Hello world!', 'saltstring'), '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
  const hash = ftpPasswordHash(fixedSecrets, 'dagdrop').reveal();
  assert.equal(hash, ftpPasswordHash(fixedSecrets, 'dagdrop').reveal(), 'deterministic');
  const salt = hash.split('$')[2] ?? '';
  const openssl = execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: 'fixed-ftpUser-value', encoding: 'utf8' }).trim();
  assert.equal(hash, openssl);
});

test('mountUnitName matches systemd-escape --path --suffix=mount', { skip: spawnSync('systemd-escape', ['--version']).status !== 0 && 'no systemd-escape' }, () => {
  for (const p of ['/opt/airflow/dags', '/srv/my-dags/v1.2', '/data/dags_x/']) {
    const want = execFileSync('systemd-escape', ['--path', '--suffix=mount', p], { encoding: 'utf8' }).trim();
    assert.equal(mountUnitName(p), want, p);
  }
});

test('known_hosts lines: name and address, [name]:port when the port is not 22', async () => {
  const inv = await seedInventory();
  const card1 = inv.hosts.find((h) => h.name === 'card1') as Host;
  assert.deepEqual(knownHostsLines(inv, card1, [FIXED_HOST_KEY]), [`card1,192.168.83.133 ${FIXED_HOST_KEY}`]);
  assert.deepEqual(knownHostsLines(inv, { ...card1, ssh: { port: 2222 } }, ['ssh-ed25519 AAAA']), ['[card1]:2222,[192.168.83.133]:2222 ssh-ed25519 AAAA']);
  const conn = JSON.parse(connectionsJson(inv, () => [])) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(conn), ['target_ssh']);
  assert.equal(conn['target_ssh']?.['login'], 'airflow_svc');
  assert.equal(JSON.parse(String(conn['target_ssh']?.['extra'])).no_host_key_check, 'false');
});

test('the workers\' key pair: made once (0600, OpenSSH), reused, refused when others can read it', async () => {
  const dir = tempDir('ah-keypair-');
  try {
    const a = await loadOrCreateKeypair(dir, 'k', 'test');
    assert.equal(a.created, true);
    assert.equal((await stat(path.join(dir, 'k'))).mode & 0o777, 0o600);
    assert.match(a.publicKey, /^ssh-ed25519 [A-Za-z0-9+/=]+ test$/);
    assert.equal(String(a.privateKey), '***');
    const b = await loadOrCreateKeypair(dir, 'k', 'test');
    assert.equal(b.created, false);
    assert.equal(b.publicKey, a.publicKey);
    assert.equal((await readFile(path.join(dir, 'k.pub'), 'utf8')).trim(), a.publicKey);
    const fp = execFileSync('ssh-keygen', ['-y', '-f', path.join(dir, 'k')], { encoding: 'utf8' }).trim();
    assert.equal(fp.split(' ').slice(0, 2).join(' '), a.publicKey.split(' ').slice(0, 2).join(' '), 'ssh-keygen reads the private key');
    await chmod(path.join(dir, 'k'), 0o644);
    await assert.rejects(loadOrCreateKeypair(dir, 'k', 'test'), /must not be readable by group or others/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('readTree: regular files only, caches and VCS skipped, a symlink refused', async () => {
  const dir = tempDir('ah-tree-');
  try {
    await mkdir(path.join(dir, 'pkg', '__pycache__'), { recursive: true });
    await mkdir(path.join(dir, '.git'), { recursive: true });
    await writeFile(path.join(dir, 'dag.py'), 'X = 1\n');
    await writeFile(path.join(dir, 'pkg', 'm.py'), '');
    await writeFile(path.join(dir, 'pkg', '__pycache__', 'm.cpython-311.pyc'), '');
    await writeFile(path.join(dir, '.git', 'HEAD'), '');
    const t = readTree(dir);
    assert.deepEqual(t.files.map((f) => f.path), ['dag.py', 'pkg/m.py']);
    await symlink('/etc/passwd', path.join(dir, 'link.py'));
    assert.throws(() => readTree(dir), /link\.py is a symlink/);
    assert.throws(() => readTree(path.join(dir, 'missing')), /cannot read DAG folder/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a non-default cluster.airflow.home and user reach the worker\'s target files, the connection import and the status probes', async () => {
  const inv = await seedInventory();
  inv.cluster.airflow.home = '/srv/af';
  inv.cluster.airflow.user = 'af';
  for (const h of inv.hosts) h.vars = { ...h.vars, interface: 'eth0' };
  const files = renderFiles(dags, inv, fixedSecrets, 'debian', operator).filter((f) => f.host === 'worker1');
  const config = files.find((f) => f.path === '/srv/af/.ssh/config');
  assert.ok(config, files.map((f) => f.path).join(', '));
  assert.match(String(config.content), /IdentityFile \/srv\/af\/\.ssh\/target_ed25519\n {4}IdentitiesOnly yes\n {4}StrictHostKeyChecking yes\n {4}UserKnownHostsFile \/srv\/af\/\.ssh\/known_hosts\n/);
  const conn = JSON.parse(String(files.find((f) => f.path === '/etc/airflow-ha/airflow-connections.json')?.content)) as Record<string, { extra: string }>;
  assert.equal(JSON.parse(conn['target_ssh']?.extra ?? '{}').key_file, '/srv/af/.ssh/target_ed25519');
  const scripts = firstRunScripts(dags, inv, debian, fixedSecrets, 'dags with a non-default Airflow home', operator).get('worker1') ?? '';
  assert.match(scripts, /cd \/srv\/af && runuser -u af -- env AIRFLOW_HOME=\/srv\/af \/srv\/af\/venv\/bin\/airflow connections import/);
  const probes = hostProbes({ inventory: inv }, inv.hosts.find((h) => h.name === 'worker1')!).map((x) => x.cmd.toString()).join('\n');
  assert.match(probes, /runuser -u af -- ssh -o BatchMode=yes/);
  assert.match(probes, /for p in \/ \/srv\/af; do/, 'the data folder whose disk use is checked');
  assert.doesNotMatch(`${scripts}\n${probes}\n${files.map((f) => `${f.path}\n${String(f.content)}`).join('\n')}`, /\/opt\/airflow\/(venv|\.ssh|airflow\.cfg)|runuser -u airflow /);
});
