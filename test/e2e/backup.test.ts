/**
 * pgBackRest end to end on 4 lab hosts (3 PostgreSQL + etcd, 1 backup): the real CLI applies the
 * etcd-patroni playbook (which sets up the repository host, WAL archiving and the stanza), takes a
 * full backup, and after more writes and a dropped table restores the cluster to a moment between
 * them with `restore --to`: exactly the rows written before that moment are back, the dropped table
 * too, the cluster has a leader and two streaming replicas again, WAL archiving works from the
 * restored cluster, and a second apply changes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bootLab, cli, events, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
const PG = ['pg1', 'pg2', 'pg3'];

before(async () => {
  lab = await bootLab('bk', [...PG, 'bk1'], [['postgresql', 'etcd'], ['postgresql', 'etcd'], ['postgresql', 'etcd'], ['backup']]);
});

after(async () => {
  await tearDown(lab);
});

const inv = () => ['-i', lab.inventoryFile];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Patroni members as `patronictl list -f json` on pg1 prints them. */
async function members(): Promise<Array<Record<string, unknown>>> {
  const r = await onHost(lab.inventoryFile, 'pg1', 'patronictl -c /etc/patroni/config.yml list -f json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

async function leader(): Promise<string> {
  const l = (await members()).find((m) => m['Role'] === 'Leader')?.['Member'];
  assert.ok(typeof l === 'string', 'a leader');
  return l;
}

/** psql as postgres on the leader, database postgres; returns stdout trimmed. */
async function sql(query: string): Promise<string> {
  const host = await leader();
  const r = await onHost(lab.inventoryFile, host, `runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c ${JSON.stringify(query)}`);
  assert.equal(r.code, 0, `${host}: ${query}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Waits until one leader and two streaming replicas on one timeline; returns the members. */
async function healthyCluster(timeoutMs: number): Promise<Array<Record<string, unknown>>> {
  const end = Date.now() + timeoutMs;
  let rows: Array<Record<string, unknown>> = [];
  while (Date.now() < end) {
    rows = await members().catch(() => []);
    // Patroni 3.0.2 (Debian 12) lists a replica as `running`; later releases say `streaming`
    // (Patroni 3.0.4, patroni/patroni#2733). Either way the replica's own WAL receiver must stream.
    const replicas = [];
    for (const r of rows) {
      if ((r['Role'] === 'Replica' || r['Role'] === 'Sync Standby') && (r['State'] === 'streaming' || r['State'] === 'running')) {
        const wal = await onHost(lab.inventoryFile, String(r['Member']), "runuser -u postgres -- psql -XqAt -c 'select status from pg_stat_wal_receiver'");
        if (wal.stdout.trim() === 'streaming') replicas.push(r);
      }
    }
    if (rows.filter((r) => r['Role'] === 'Leader').length === 1 && replicas.length === 2 && new Set(rows.map((r) => r['TL'])).size === 1) return rows;
    await sleep(3000);
  }
  assert.fail(`no leader with two streaming replicas on one timeline: ${JSON.stringify(rows)}`);
}

test('backup, more writes, restore --to a moment between them: exactly the rows before it, a leader and 2 streaming replicas, then zero changes', { timeout: 2_400_000 }, async () => {
  const first = await cli(['apply', ...inv(), '--playbook', 'etcd-patroni', '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-4000) + first.stderr.slice(-2000));
  // The repository host's gate (pgbackrest check) passed: WAL archiving works from the leader.
  assert.ok(events(first.stdout).some((e) => e.type === 'gate' && e['status'] === 'ok' && String(e['gate']).startsWith('backup: pgbackrest check')), 'the backup gate passed');

  // archive_command on every node, from the Patroni config.
  for (const h of PG) {
    const r = await onHost(lab.inventoryFile, h, `runuser -u postgres -- psql -XAtc 'show archive_mode' -c 'show archive_command'`);
    assert.equal(r.stdout.trim(), `on\npgbackrest --stanza=${lab.loaded.inventory.cluster.name} archive-push %p`, `${h}: ${r.stdout}${r.stderr}`);
  }
  // The schedule: two timers on the backup host.
  const timers = await onHost(lab.inventoryFile, 'bk1', 'systemctl is-active airflow-ha-backup-full.timer airflow-ha-backup-diff.timer; systemctl is-enabled airflow-ha-backup-full.timer');
  assert.equal(timers.stdout.trim(), 'active\nactive\nenabled', timers.stdout + timers.stderr);

  await sql('create table t_rows (i int primary key, phase text); create table t_drop (i int); insert into t_drop select generate_series(1, 5)');
  await sql("insert into t_rows select g, 'before backup' from generate_series(1, 10) g");

  const bk = await cli(['backup', ...inv(), '--type', 'full', '--json']);
  assert.equal(bk.exitCode, 0, bk.stdout + bk.stderr);
  const label = String(events(bk.stdout).find((e) => e.type === 'backup')?.['label']);
  assert.match(label, /^\d{8}-\d{6}F$/);
  const list = await cli(['backup', 'list', ...inv(), '--json']);
  assert.equal(list.exitCode, 0, list.stderr);
  const info = JSON.parse(list.stdout) as { backups: Array<{ label: string; type: string }>; statusCode: number };
  assert.equal(info.statusCode, 0);
  assert.deepEqual(info.backups.map((b) => [b.label, b.type]), [[label, 'full']]);

  await sql("insert into t_rows select g, 'after backup' from generate_series(11, 20) g");
  await sleep(1500);
  // The moment to go back to, on the database's own clock.
  const target = await sql(`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);
  await sleep(1500);
  await sql("insert into t_rows select g, 'after target' from generate_series(21, 30) g");
  await sql('drop table t_drop');
  assert.equal(await sql('select count(*) from t_rows'), '30');

  // Without --yes: the plan, exit 2, nothing done.
  const dry = await cli(['restore', ...inv(), '--to', target]);
  assert.equal(dry.exitCode, 2, dry.stdout + dry.stderr);
  assert.match(dry.stderr, /refusing without --yes/);
  assert.match(dry.stderr, /patronictl remove/);
  assert.equal(await sql('select count(*) from t_rows'), '30', 'nothing was restored');

  const t0 = Date.now();
  const restore = await cli(['restore', ...inv(), '--to', target, '--yes']);
  assert.equal(restore.exitCode, 0, restore.stdout + restore.stderr.slice(-4000));
  process.stderr.write(`restore took ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);

  const rows = await healthyCluster(600_000);
  assert.equal(new Set(rows.map((r) => r['TL'])).size, 1);
  assert.equal(await sql("select string_agg(phase || ':' || n, ',' order by phase) from (select phase, count(*) n from t_rows group by phase) s"), 'after backup:10,before backup:10');
  assert.equal(await sql('select max(i) from t_rows'), '20');
  assert.equal(await sql('select count(*) from t_drop'), '5', 'the dropped table is back');
  // The restored cluster writes, and archives to the same stanza (on a new timeline).
  await sql("insert into t_rows values (31, 'after restore')");
  const check = await onHost(lab.inventoryFile, 'bk1', `runuser -u pgbackrest -- pgbackrest --stanza=${lab.loaded.inventory.cluster.name} --archive-timeout=60 check`);
  assert.equal(check.code, 0, check.stderr);

  const status = await cli(['status', ...inv(), '--json']);
  const report = JSON.parse(status.stdout) as { components: Array<{ name: string; verdict: string; checks: Array<{ check: string; verdict: string; reason?: string }> }> };
  const backup = report.components.find((c) => c.name === 'backup');
  assert.ok(backup, status.stdout);
  assert.equal(backup.checks.find((c) => c.check === 'last backup')?.verdict, 'healthy', JSON.stringify(backup));
  assert.match(backup.checks.find((c) => c.check === 'WAL archive')?.reason ?? '', /lag \d+ segment/, JSON.stringify(backup));

  const second = await cli(['apply', ...inv(), '--playbook', 'etcd-patroni', '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-4000) + second.stderr);
  const end = runEnd(second.stdout);
  assert.deepEqual(end.hosts.map((h) => h.changed), [0, 0, 0, 0], JSON.stringify(events(second.stdout).filter((e) => e.type === 'task' && e['status'] === 'changed')));
});
