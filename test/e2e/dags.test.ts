/**
 * DAG storage (mode sync), FTP and the SSH target end to end: the real CLI applies `--playbook base`
 * (the firewall opens FTP's passive range) and then `--playbook dags` to a lab of three hosts —
 * h1 [scheduler, worker] (no Airflow installed: the DAG folder and the worker's key only), h2
 * [ftp, dag_processor], h3 [target] — with a DAG folder in a temp dir. Airflow's connection import is
 * skipped there (no /opt/airflow/venv/bin/airflow: the task's guard says so).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { treeRevision } from '../../src/tasks/release.js';
import { vsftpdCheck } from '../../src/components/ftp.js';
import { bootLab, cli, events, onHost, runEnd, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
let dagDir = '';
const HOSTS = ['h1', 'h2', 'h3'];

before(async () => {
  lab = await bootLab('dag', HOSTS, [['scheduler', 'worker'], ['ftp', 'dag_processor'], ['target']]);
  dagDir = path.join(lab.dir, 'dags');
  await mkdir(path.join(dagDir, 'lib'), { recursive: true });
  await writeFile(path.join(dagDir, 'hello.py'), 'from lib.util import greet\n\nGREETING = greet("world")\n');
  await writeFile(path.join(dagDir, 'lib', 'util.py'), 'def greet(name):\n    return f"hello {name}"\n');
  // The inventory: DAGs in mode sync from ./dags, next to it.
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { cluster: Record<string, unknown>; hosts: { queues?: string[]; name: string }[] };
  doc.cluster['dags'] = { mode: 'sync', source: 'dags', keep: 3 };
  for (const h of doc.hosts) if (h.name === 'h1') h.queues = ['default'];
  await writeFile(lab.inventoryFile, `# end-to-end test lab\n${stringify(doc)}`);
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];
const sh = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const address = (name: string) => lab.loaded.inventory.hosts.find((h) => h.name === name)?.address ?? '';

/** The revision the DAG folder points at on `host` (the last path segment of the symlink). */
async function current(host: string): Promise<string> {
  const r = await sh(host, 'readlink /opt/airflow/dags');
  assert.equal(r.code, 0, r.stderr);
  return path.basename(r.stdout.trim());
}

async function localRevision(): Promise<string> {
  const { readTree } = await import('../../src/cli/operator.js');
  return treeRevision(readTree(dagDir).files);
}

test('apply --playbook base then dags: DAG release on every Airflow host, FTP and the SSH target set up', async () => {
  const base = await cli(['apply', ...inv(), '--playbook', 'base', '--json', '--accept-new-host-keys']);
  assert.equal(base.exitCode, 0, base.stdout.slice(-3000) + base.stderr);
  const first = await cli(['apply', ...inv(), '--playbook', 'dags', '--json']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-5000) + first.stderr);
  const rev = await localRevision();
  for (const h of ['h1', 'h2']) {
    assert.equal(await current(h), rev, `${h}: /opt/airflow/dags -> release ${rev}`);
    const r = await sh(h, 'cat /opt/airflow/dags/lib/util.py && stat -c %U:%a /opt/airflow/dags-releases/*/hello.py');
    assert.match(r.stdout, /def greet/);
    assert.match(r.stdout, /root:644/);
  }
  assert.notEqual((await sh('h3', 'test -e /opt/airflow/dags')).code, 0, 'the target gets no DAGs');
  const skipped = events(first.stdout).find((e) => e.type === 'task' && String(e['task']).startsWith('airflow connections import'));
  assert.equal(skipped?.['status'], 'ok', 'no airflow binary on h1: the import is skipped, not failed');
});

test('a second apply reports zero changes', async () => {
  const again = await cli(['apply', ...inv(), '--playbook', 'dags', '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
  const end = runEnd(again.stdout);
  assert.deepEqual(end.hosts.map((h) => [h.host, h.changed]), HOSTS.map((h) => [h, 0]), JSON.stringify(events(again.stdout).filter((e) => e['status'] === 'changed')));
  assert.equal(events(again.stdout).filter((e) => e.type === 'handler').length, 0);
});

test('deploy-dags after a change: switched atomically to the new revision, the old release kept', async () => {
  const old = await current('h1');
  await writeFile(path.join(dagDir, 'hello.py'), 'from lib.util import greet\n\nGREETING = greet("again")\n');
  const rev = await localRevision();
  assert.notEqual(rev, old);
  const r = await cli(['deploy-dags', ...inv(), '--json']);
  assert.equal(r.exitCode, 0, r.stdout.slice(-3000) + r.stderr);
  for (const h of ['h1', 'h2']) {
    assert.equal(await current(h), rev);
    const kept = await sh(h, `test -d /opt/airflow/dags-releases/${old} && grep -c again /opt/airflow/dags/hello.py`);
    assert.equal(kept.code, 0, `${h}: old release ${old} still there, new content served: ${kept.stderr}`);
    assert.equal((await sh(h, 'test -L /opt/airflow/dags')).code, 0, 'the DAG folder is a symlink');
  }
  const same = await cli(['deploy-dags', ...inv(), '--json']);
  assert.equal(same.exitCode, 0);
  assert.equal(runEnd(same.stdout).hosts.reduce((a, h) => a + h.changed, 0), 0, 'the same folder again changes nothing');
});

test('deploy-dags refuses a folder with a syntax error, names the file and line, switches nothing', async () => {
  const before = await current('h1');
  const bad = path.join(lab.dir, 'bad-dags');
  await mkdir(bad, { recursive: true });
  await writeFile(path.join(bad, 'good.py'), 'X = 1\n');
  await writeFile(path.join(bad, 'broken.py'), 'X = 1\ndef oops(:\n    pass\n');
  const r = await cli(['deploy-dags', ...inv(), '--source', bad]);
  assert.equal(r.exitCode, 1, r.stdout + r.stderr);
  const out = r.stdout + r.stderr;
  assert.match(out, /broken\.py/);
  assert.match(out, /line 2/);
  for (const h of ['h1', 'h2']) assert.equal(await current(h), before, `${h} not switched`);
  const missing = await cli(['deploy-dags', ...inv(), '--source', path.join(lab.dir, 'nope')]);
  assert.equal(missing.exitCode, 2, 'a missing folder is bad input');
});

test('deploy-dags as root trusts nothing the airflow account could plant: a symlinked releases folder is refused, a compileall.py in the DAG folder never runs as root', async () => {
  const as = (cmd: string) => sh('h1', `cd / && runuser -u airflow -- sh -c '${cmd}'`);
  const before = await current('h1');
  // A cluster set up by the old code: AIRFLOW_HOME is the account's, so it can swap entries there.
  // It moves the releases folder away and puts a symlink to a folder full of folders in its place
  // (standing in for `/`: pruning through such a link deleted top-level folders).
  assert.equal((await sh('h1', 'mkdir -p /srv/victim/etc /srv/victim/usr /srv/victim/var && chown airflow:airflow /opt/airflow')).code, 0);
  const plant = await as('mv /opt/airflow/dags-releases /opt/airflow/releases.moved && ln -s /srv/victim /opt/airflow/dags-releases');
  assert.equal(plant.code, 0, plant.stderr);
  // And DAG code named like the module `python -m compileall` imports: as root it would write "0".
  await writeFile(path.join(dagDir, 'compileall.py'), 'import os\nopen("/tmp/compileall-ran", "w").write(str(os.getuid()))\n');
  await writeFile(path.join(dagDir, 'hello.py'), 'from lib.util import greet\n\nGREETING = greet("hardened")\n');
  const refused = await cli(['deploy-dags', ...inv()]);
  assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
  assert.match(refused.stdout + refused.stderr, /task failed on h1[\s\S]*\/opt\/airflow\/dags-releases is a symlink, not a directory, or not root's alone/);
  assert.equal((await sh('h1', 'ls /srv/victim | tr "\\n" " "')).stdout.trim(), 'etc usr var', 'nothing removed or written through the link');
  assert.equal(await current('h1'), before, 'h1 not switched');
  const marker = await sh('h1', 'cat /tmp/compileall-ran 2>/dev/null || echo absent');
  assert.equal(marker.stdout.trim(), 'absent', 'the compile check never imported the DAG folder\'s compileall.py');
  // The run gave the home back to root first: the account can no longer swap anything there.
  assert.equal((await sh('h1', 'stat -c %U:%G:%a /opt/airflow')).stdout.trim(), 'root:root:755');
  const again = await as('mv /opt/airflow/dags-releases /opt/airflow/x');
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /Permission denied/);
  // Root removes the planted link; the next deploy-dags ships the folder, then a re-run changes nothing.
  assert.equal((await sh('h1', 'rm /opt/airflow/dags-releases && mv /opt/airflow/releases.moved /opt/airflow/dags-releases')).code, 0);
  const ok = await cli(['deploy-dags', ...inv(), '--json']);
  assert.equal(ok.exitCode, 0, ok.stdout.slice(-3000) + ok.stderr);
  const rev = await localRevision();
  for (const h of ['h1', 'h2']) assert.equal(await current(h), rev);
  assert.equal((await sh('h1', 'cat /tmp/compileall-ran 2>/dev/null || echo absent')).stdout.trim(), 'absent');
  const same = await cli(['deploy-dags', ...inv(), '--json']);
  assert.equal(same.exitCode, 0, same.stdout.slice(-3000) + same.stderr);
  assert.equal(runEnd(same.stdout).hosts.reduce((a, h) => a + h.changed, 0), 0, JSON.stringify(events(same.stdout).filter((e) => e['status'] === 'changed')));
  // Nothing of root's waits under a guessable /tmp name.
  assert.equal((await sh('h1', 'ls -a /tmp | grep -c airflow-ha || true')).stdout.trim(), '0');
});

/** curl on this machine, over the lab bridge (the firewall allows the cluster network, which the bridge is in). */
async function curl(args: string[]): Promise<{ code: number; out: string }> {
  const r = await execa('curl', ['-sS', '--max-time', '20', ...args], { reject: false });
  return { code: r.exitCode ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

test('FTP: TLS login, upload into upload/, chroot holds, anonymous and clear text refused', async () => {
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const user = `dagdrop:${secrets.ftpUser.reveal()}`;
  const url = `ftp://${address('h2')}/`;
  const file = path.join(lab.dir, 'upload.txt');
  await writeFile(file, 'dropped\n');
  const tls = ['--ssl-reqd', '--insecure', '--user', user];
  const up = await curl([...tls, '-T', file, `${url}upload/upload.txt`]);
  assert.equal(up.code, 0, up.out);
  assert.equal((await sh('h2', 'cat /srv/ftp/dagdrop/upload/upload.txt')).stdout, 'dropped\n');
  const list = await curl([...tls, '--list-only', url]);
  assert.equal(list.code, 0, list.out);
  assert.match(list.out, /^upload$/m, 'the chroot root is the account home');
  const etc = await curl([...tls, '--list-only', `${url}etc/`]);
  assert.notEqual(etc.code, 0, `no /etc inside the chroot: ${etc.out}`);
  assert.doesNotMatch(etc.out, /passwd|hostname/, `chroot: /etc is not reachable: ${etc.out}`);
  const escape = await curl([...tls, `${url}../../../etc/passwd`]);
  assert.notEqual(escape.code, 0, 'no way out of the chroot');
  const anon = await curl(['--ssl-reqd', '--insecure', '--list-only', url]);
  assert.notEqual(anon.code, 0, `anonymous refused: ${anon.out}`);
  const clear = await curl(['--user', user, '--list-only', url]);
  assert.notEqual(clear.code, 0, `a login without TLS is refused: ${clear.out}`);
  // The config check used before a vsftpd.conf replaces the old one: the live file passes, a typo fails.
  assert.equal((await sh('h2', vsftpdCheck('/etc/vsftpd.conf').render())).code, 0);
  const typo = await sh('h2', `sed 's/^anonymous_enable=NO/anonymous_enabel=NO/' /etc/vsftpd.conf > /root/typo.conf && ${vsftpdCheck('/root/typo.conf').render()}`);
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /OOPS/);
});

test('SSH target: the worker reaches it as airflow with the pinned host key; an altered key is refused', async () => {
  const target = address('h3');
  const ssh = `runuser -u airflow -- ssh -F /opt/airflow/.ssh/config -o BatchMode=yes -o ConnectTimeout=5 -i /opt/airflow/.ssh/target_ed25519 airflow_svc@${target} true`;
  const ok = await sh('h1', ssh);
  assert.equal(ok.code, 0, ok.stderr);
  const perms = await sh('h1', 'stat -c "%U %a" /opt/airflow/.ssh/target_ed25519 /etc/airflow-ha/airflow-connections.json && stat -c "%G %a" /etc/airflow-ha/airflow-connections.json');
  assert.equal(perms.stdout.trim(), "airflow 600\nroot 640\nairflow 640");
  const conn = JSON.parse((await sh('h1', 'cat /etc/airflow-ha/airflow-connections.json')).stdout) as Record<string, { host: string; login: string; extra: string }>;
  assert.equal(conn['target_ssh']?.login, 'airflow_svc');
  assert.match(conn['target_ssh']?.extra ?? '', /"no_host_key_check":"false"/);
  // Alter the pinned key (another valid ed25519 key): StrictHostKeyChecking refuses the target.
  const other = 'AAAAC3NzaC1lZDI1NTE5AAAAIBq2+8XQ0rZ4Qp2Ff5ij2MOdF2Wn0TgFq1Zb4C4F0kQm';
  const alter = await sh('h1', `cp /opt/airflow/.ssh/known_hosts /root/kh.bak && sed -i 's#ssh-ed25519 [A-Za-z0-9+/=]*#ssh-ed25519 ${other}#' /opt/airflow/.ssh/known_hosts`);
  assert.equal(alter.code, 0, alter.stderr);
  try {
    const refused = await sh('h1', ssh);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /host key|HOST IDENTIFICATION/i);
  } finally {
    await sh('h1', 'cp /root/kh.bak /opt/airflow/.ssh/known_hosts');
  }
  // And a password login as the service user is not possible: the account has none.
  assert.match((await sh('h3', 'getent shadow airflow_svc | cut -d: -f2')).stdout, /^[!*]/);
});
