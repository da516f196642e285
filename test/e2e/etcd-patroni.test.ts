/**
 * etcd + Patroni end to end: the real CLI applies the etcd-patroni playbook to 3 lab hosts
 * (each postgresql + etcd), then the cluster is checked from inside the hosts, and a second apply
 * must change nothing and restart nothing. The same inventory with `cluster.tls` turned on is
 * refused by the preflight (`tls:switch`) before anything changes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { bootLab, cli, events, runEnd, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
const HOSTS = ['pg1', 'pg2', 'pg3'];

before(async () => {
  lab = await bootLab('ep', HOSTS, [['postgresql', 'etcd'], ['postgresql', 'etcd'], ['postgresql', 'etcd']]);
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];

/** Runs `cmd` as root on `limit`; returns host -> { code, out }. */
async function exec(limit: string, cmd: string): Promise<Record<string, { code: number; out: string; err: string }>> {
  const r = await cli(['exec', ...inv(), '--limit', limit, '--json', '--', cmd]);
  return Object.fromEntries(
    events(r.stdout).map((e) => [String(e['host']), { code: Number(e['exitCode']), out: String(e['stdout'] ?? '').trim(), err: String(e['stderr'] ?? '').trim() }]),
  );
}

async function starts(): Promise<Record<string, string>> {
  const r = await exec('all', 'for u in etcd patroni; do printf "%s=%s\\n" $u "$(systemctl show -p ExecMainStartTimestampMonotonic --value $u)"; done');
  return Object.fromEntries(Object.entries(r).map(([h, v]) => [h, v.out]));
}

const addr = (i: number) => lab.loaded.inventory.hosts[i]?.address ?? '';

test('apply etcd-patroni: etcd healthy, one leader + 2 streaming replicas, the airflow database; a re-run changes nothing', { timeout: 1_500_000 }, async () => {
  const first = await cli(['apply', ...inv(), '--playbook', 'etcd-patroni', '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-4000) + first.stderr.slice(-2000));

  // etcd: 3 members, all healthy.
  const health = await exec('pg1', 'ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 endpoint health --cluster 2>&1');
  assert.equal(health['pg1']?.code, 0, health['pg1']?.out);
  assert.equal((health['pg1']?.out.match(/ is healthy/g) ?? []).length, 3, health['pg1']?.out);
  const members = await exec('pg2', 'ETCDCTL_API=3 etcdctl member list -w simple');
  assert.equal(members['pg2']?.out.split('\n').filter((l) => l.includes(', started, ')).length, 3, members['pg2']?.out);

  // Patroni: one Leader, two replicas streaming (one of them the synchronous standby: synchronous mode
  // is on by default from 3 PostgreSQL hosts), one timeline.
  // A replica's timeline shows once its WAL receiver has reported it: poll briefly for a complete list.
  let rows: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 30; i++) {
    const list = await exec('pg1', 'patronictl -c /etc/patroni/config.yml list -f json');
    assert.equal(list['pg1']?.code, 0, list['pg1']?.err);
    rows = JSON.parse(list['pg1']?.out ?? '[]') as Array<Record<string, unknown>>;
    if (rows.length === 3 && rows.every((r) => r['TL'] !== undefined)) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  assert.equal(rows.length, 3, JSON.stringify(rows));
  assert.equal(rows.filter((r) => r['Role'] === 'Leader').length, 1, JSON.stringify(rows));
  assert.equal(rows.find((r) => r['Role'] === 'Leader')?.['Member'], 'pg1', 'the first host bootstrapped the cluster');
  assert.equal(rows.filter((r) => (r['Role'] === 'Replica' || r['Role'] === 'Sync Standby') && (r['State'] === 'streaming' || r['State'] === 'running')).length, 2, JSON.stringify(rows));
  assert.equal(rows.filter((r) => r['Role'] === 'Sync Standby').length, 1, JSON.stringify(rows));
  assert.equal(new Set(rows.map((r) => r['TL'])).size, 1, JSON.stringify(rows));
  const wal = await exec('pg2,pg3', `runuser -u postgres -- psql -XAtc "select status from pg_stat_wal_receiver"`);
  assert.equal(wal['pg2']?.out, 'streaming');
  assert.equal(wal['pg3']?.out, 'streaming');

  // No distro cluster, distro units off.
  const distro = await exec('all', 'ls /etc/postgresql/15 2>/dev/null | wc -l; systemctl is-enabled postgresql; true');
  for (const h of HOSTS) assert.match(distro[h]?.out ?? '', /^0\ndisabled$/, `${h}: ${distro[h]?.out}`);

  // The airflow role logs in with its password over TCP to the leader's address.
  const secrets = parse(await readFile(path.join(lab.loaded.stateDir, 'secrets.yaml'), 'utf8')) as Record<string, string>;
  const pw = secrets['airflowDb'];
  assert.ok(pw);
  const login = await exec('pg2', `PGPASSWORD='${pw}' psql -XqAt -h ${addr(0)} -U airflow -d airflow -c "create table t_e2e(i int); drop table t_e2e; select current_user"`);
  assert.equal(login['pg2']?.code, 0, login['pg2']?.err);
  assert.equal(login['pg2']?.out, 'airflow');
  const bad = await exec('pg2', `PGPASSWORD=wrong psql -XAt -h ${addr(0)} -U airflow -d airflow -c "select 1"`);
  assert.notEqual(bad['pg2']?.code, 0, 'a wrong password is refused');

  // patroni --validate-config (3.0.2 has it): only "port in use" findings on a running node.
  const val = await exec('all', 'patroni --validate-config /etc/patroni/config.yml 2>&1; echo "rc=$?"');
  for (const h of HOSTS) {
    const lines = (val[h]?.out ?? '').split('\n').filter((l) => l && !l.startsWith('rc=') && !/is already in use/.test(l));
    assert.deepEqual(lines, [], `${h}: ${val[h]?.out}`);
  }

  // Second run: zero changes, no handler, no service restarted.
  const before = await starts();
  const second = await cli(['apply', ...inv(), '--playbook', 'etcd-patroni', '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-4000) + second.stderr);
  const end = runEnd(second.stdout);
  assert.deepEqual(end.hosts.map((h) => h.changed), [0, 0, 0], JSON.stringify(events(second.stdout).filter((e) => e.type === 'task' && e['status'] === 'changed')));
  assert.equal(events(second.stdout).filter((e) => e.type === 'handler').length, 0);
  assert.deepEqual(await starts(), before, 'no service restarted');
});

test('cluster.tls turned on for this running plaintext cluster: plan and apply refuse it (tls:switch, exit 2) on every member, and nothing changes', { timeout: 300_000 }, async () => {
  const text = await readFile(lab.inventoryFile, 'utf8');
  const doc = parse(text) as { cluster: Record<string, unknown> };
  doc.cluster['tls'] = { enabled: true };
  await writeFile(lab.inventoryFile, stringify(doc));
  try {
    const files = 'stat -c %Y /etc/default/etcd /etc/patroni/config.yml; ls /etc/airflow-ha/tls 2>/dev/null | wc -l';
    const before = await exec('all', files);
    const startsBefore = await starts();
    for (const cmd of ['plan', 'apply']) {
      const r = await cli([cmd, ...inv(), '--playbook', 'etcd-patroni']);
      const out = r.stdout + r.stderr;
      assert.equal(r.exitCode, 2, out.slice(-3000));
      for (const h of HOSTS) assert.match(out, new RegExp(`${h}: \\[tls:switch\\] this etcd member serves http:// \\(ETCD_LISTEN_CLIENT_URLS\\) and the inventory turns cluster\\.tls on`), out.slice(-3000));
      assert.match(out, /fix: keep cluster\.tls\.enabled: false for this cluster/);
    }
    assert.deepEqual(await exec('all', files), before, 'no config written, no TLS file shipped');
    assert.deepEqual(await starts(), startsBefore, 'no service restarted');
  } finally {
    await writeFile(lab.inventoryFile, text);
  }
});

test('a data dir that belongs to no Patroni cluster is refused with a clear message, never wiped', { timeout: 300_000 }, async () => {
  // Fake a leftover on pg3: stop Patroni, move its data dir away, put a foreign cluster in its place.
  const prep = await exec('pg3', [
    'systemctl stop patroni',
    'mv /var/lib/postgresql/15/main /var/lib/postgresql/15/main.keep',
    'runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/15/main >/dev/null',
  ].join(' && '));
  assert.equal(prep['pg3']?.code, 0, prep['pg3']?.err);
  const run = await cli(['apply', ...inv(), '--playbook', 'etcd-patroni', '--limit', 'pg3']);
  assert.equal(run.exitCode, 1, run.stdout + run.stderr);
  assert.match(run.stdout + run.stderr, /pg3: \/var\/lib\/postgresql\/15\/main holds a PostgreSQL 15 data dir .*belongs to another cluster/s);
  const still = await exec('pg3', 'test -f /var/lib/postgresql/15/main/PG_VERSION && systemctl is-active patroni; true');
  assert.match(still['pg3']?.out ?? '', /inactive/, 'Patroni was not started on it');
  // Put pg3 back and converge.
  const restore = await exec('pg3', 'rm -rf /var/lib/postgresql/15/main && mv /var/lib/postgresql/15/main.keep /var/lib/postgresql/15/main');
  assert.equal(restore['pg3']?.code, 0);
  const again = await cli(['apply', ...inv(), '--playbook', 'etcd-patroni', '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
});

test('a rebuilt etcd member (no data dir, no env file, no etcdctl) is planned to join as existing, never to start a new cluster', { timeout: 300_000 }, async () => {
  // Make pg3 look freshly rebuilt: etcd stopped, its data dir and env file gone, etcdctl not installed.
  const dataDir = `/var/lib/etcd/${lab.loaded.inventory.cluster.name}`;
  const moves = [[dataDir, `${dataDir}.keep`], ['/etc/default/etcd', '/etc/default/etcd.keep'], ['/usr/bin/etcdctl', '/usr/bin/etcdctl.keep']];
  const prep = await exec('pg3', ['systemctl stop etcd', ...moves.map(([a, b]) => `mv ${a} ${b}`), '! command -v etcdctl'].join(' && '));
  assert.equal(prep['pg3']?.code, 0, prep['pg3']?.err);
  try {
    const plan = await cli(['plan', ...inv(), '--playbook', 'etcd-patroni', '--limit', 'pg3', '--json']);
    const etcdEnv = events(plan.stdout).find((e) => e.type === 'task' && e['host'] === 'pg3' && e['task'] === 'template /etc/default/etcd');
    assert.ok(etcdEnv, plan.stdout.slice(-3000) + plan.stderr);
    assert.deepEqual(etcdEnv['changes'], ['create /etc/default/etcd (initial cluster state existing)'], JSON.stringify(etcdEnv));
  } finally {
    const restore = await exec('pg3', [...moves.map(([a, b]) => `mv ${b} ${a}`), 'systemctl start etcd'].join(' && '));
    assert.equal(restore['pg3']?.code, 0, restore['pg3']?.err);
  }
  const health = await exec('pg1', 'ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 endpoint health --cluster 2>&1');
  assert.equal((health['pg1']?.out.match(/is healthy/g) ?? []).length, 3, health['pg1']?.out);
});
