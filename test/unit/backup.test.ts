/**
 * pgBackRest backups: the rendered configs of both sides and the timers (golden files,
 * UPDATE_GOLDEN=1 rewrites them), S3, WAL archiving in Patroni's config, the inventory rules, the
 * tasks of both sides, `pgbackrest info` JSON and pg_stat_archiver parsing, the status lines, the
 * `--to` parsing and the restore plan, and the CLI's refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { Secret } from '../../src/core/secret.js';
import { InputError, type Diagnostic } from '../../src/core/errors.js';
import { FactSet } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { parseInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { backupParameters, backupPgTasks, backupRepoTasks, backupUnits, renderPgConf, renderRepoConf, type BackupKeys } from '../../src/components/backup.js';
import { renderPatroniConfig } from '../../src/components/patroni.js';
import { formatAge, lastGoodBackup, parseArchiver, parseInfo, renderBackupList, segmentsBetween, segmentsWaiting } from '../../src/backup/info.js';
import { parseTarget, restorePlan, type RestoreInputs } from '../../src/backup/restore.js';
import { backupCheck, type HostResult } from '../../src/status/checks.js';
import { renderFiles } from '../../src/cli/render.js';
import { playbooks } from '../../playbooks/index.js';
import { assertGolden, fixedSecrets } from '../helpers/golden.js';
import { runMain } from '../helpers/cli.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const minimal = readFileSync(path.join(repo, 'test/fixtures/inventories/good/minimal.yaml'), 'utf8');
const FACTS: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: true };

/** The minimal layout plus a backup host `bk1` (and `extra` cluster lines). */
const withBackup = (extra = '') =>
  minimal.replace('  network: 10.20.0.0/24\n', `  network: 10.20.0.0/24\n${extra}`) + '  - { name: bk1, address: 10.20.0.51, roles: [backup] }\n';
const load = (text: string): Inventory => parseInventory(text, 'x.yaml').inventory;

function findings(text: string): Diagnostic[] {
  try {
    return parseInventory(text, 'x.yaml').warnings;
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return [...e.diagnostics];
  }
}

const KEYS: BackupKeys = {
  repo: { privateKey: new Secret('-----BEGIN OPENSSH PRIVATE KEY-----\nrepo\n-----END OPENSSH PRIVATE KEY-----\n'), publicKey: 'ssh-ed25519 AAAArepo airflow-ha test repository' },
  pg: { privateKey: new Secret('-----BEGIN OPENSSH PRIVATE KEY-----\npg\n-----END OPENSSH PRIVATE KEY-----\n'), publicKey: 'ssh-ed25519 AAAApg airflow-ha test postgres' },
};
const hostKeys = (h: { name: string }) => [`ssh-ed25519 AAAAhost-${h.name}`];

test('golden: pgbackrest.conf of the repository host and of a PostgreSQL host, and the schedule units', async () => {
  const inv = load(withBackup());
  await assertGolden('backup/bk1/etc/pgbackrest/pgbackrest.conf', renderRepoConf(inv));
  await assertGolden('backup/db1/etc/pgbackrest/pgbackrest.conf', renderPgConf(inv, 'db1'));
  for (const u of backupUnits(inv)) await assertGolden(`backup/bk1/etc/systemd/system/${u.name}`, u.content);
  assert.deepEqual(backupUnits(inv).map((u) => u.name), ['airflow-ha-backup-full.service', 'airflow-ha-backup-full.timer', 'airflow-ha-backup-diff.service', 'airflow-ha-backup-diff.timer']);
  // Starting a backup service takes a backup: a changed unit never restarts it, only the timer.
  assert.deepEqual(backupUnits(inv).map((u) => u.restart), [[], ['airflow-ha-backup-full.timer'], [], ['airflow-ha-backup-diff.timer']]);
  const conf = renderRepoConf(inv);
  assert.match(conf, /^pg3-host=10\.20\.0\.23$/m);
  assert.match(conf, /^repo1-retention-full=2$/m);
  assert.match(conf, /^repo1-retention-diff=7$/m);
  assert.match(renderPgConf(inv, 'db2'), /^repo1-host=10\.20\.0\.51$\n^repo1-host-user=pgbackrest$/m);
});

test('schedule and retention come from the inventory; an incremental schedule adds its units', () => {
  const inv = load(withBackup('  backup:\n    retention: { full: 4, diff: 14 }\n    schedule: { full: "Sat *-*-* 03:00:00", incr: hourly }\n'));
  assert.match(renderRepoConf(inv), /^repo1-retention-full=4$\n^repo1-retention-diff=14$/m);
  const units = backupUnits(inv);
  assert.deepEqual(units.map((u) => u.name).filter((n) => n.endsWith('.timer')), ['airflow-ha-backup-full.timer', 'airflow-ha-backup-diff.timer', 'airflow-ha-backup-incr.timer']);
  assert.match(units.find((u) => u.name === 'airflow-ha-backup-full.timer')?.content ?? '', /^OnCalendar=Sat \*-\*-\* 03:00:00$/m);
  assert.match(units.find((u) => u.name === 'airflow-ha-backup-incr.service')?.content ?? '', /^ExecStart=\/usr\/bin\/pgbackrest --stanza=acme-airflow --type=incr backup$/m);
  const bad = findings(withBackup('  backup:\n    schedule: { full: "daily\\n[Service]" }\n'));
  assert.deepEqual(bad.map((d) => d.rule), ['pattern:calendar']);
});

test('S3: the repository lines and the credentials from the environment, masked for people; no credentials is an error', () => {
  const inv = load(withBackup('  backup:\n    s3: { bucket: acme-backups, endpoint: minio.lan:9000, region: us-east-1, uriStyle: path, keyEnv: S3_KEY, secretEnv: S3_SECRET }\n'));
  const conf = renderRepoConf(inv, 'debian', { key: new Secret('AKIAEXAMPLE'), secret: new Secret('s3cr3t-value') });
  for (const l of ['repo1-type=s3', 'repo1-path=/pgbackrest', 'repo1-s3-bucket=acme-backups', 'repo1-s3-endpoint=minio.lan:9000', 'repo1-s3-region=us-east-1', 'repo1-s3-uri-style=path', 'repo1-storage-verify-tls=y', 'repo1-s3-key=AKIAEXAMPLE', 'repo1-s3-key-secret=s3cr3t-value']) {
    assert.ok(conf.split('\n').includes(l), `${l} in\n${conf}`);
  }
  assert.doesNotMatch(conf, /^repo1-path=\/var\/lib/m);
  assert.throws(() => renderRepoConf(inv), /S3_KEY and S3_SECRET/);
  // The task's diff masks the secrets; no repository folder on the host's disk.
  const tasks = backupRepoTasks(inv, FACTS, KEYS, hostKeys, { key: new Secret('AKIAEXAMPLE'), secret: new Secret('s3cr3t-value') });
  assert.ok(!tasks.some((t) => t.name === 'directory /var/lib/pgbackrest'), tasks.map((t) => t.name).join('\n'));
  const conf2 = tasks.find((t) => t.name.includes('/etc/pgbackrest/pgbackrest.conf'));
  assert.ok(conf2);
  const plan = conf2.plan(new FactSet(new Map(conf2.facts(FACTS).map((f) => [f.key, { stdout: 'missing\n', code: 0 }]))), FACTS);
  assert.doesNotMatch(JSON.stringify(plan), /s3cr3t-value|AKIAEXAMPLE/);
});

test("WAL archiving: archive_mode and archive_command in every node's Patroni config only with a backup host", () => {
  const withHost = load(withBackup());
  assert.deepEqual(backupParameters(withHost), { archive_mode: 'on', archive_command: 'pgbackrest --stanza=acme-airflow archive-push %p' });
  for (const h of ['db1', 'db2', 'db3']) {
    const cfg = parse(renderPatroniConfig(withHost, h, fixedSecrets)) as { postgresql: { parameters: Record<string, unknown> } };
    assert.equal(cfg.postgresql.parameters['archive_mode'], 'on');
    assert.equal(cfg.postgresql.parameters['archive_command'], 'pgbackrest --stanza=acme-airflow archive-push %p');
  }
  const without = load(minimal);
  assert.deepEqual(backupParameters(without), {});
  assert.doesNotMatch(renderPatroniConfig(without, 'db1', fixedSecrets), /archive_/);
  const stanza = load(withBackup('  backup: { stanza: main }\n'));
  assert.match(renderRepoConf(stanza), /^\[main\]$/m);
  assert.equal(backupParameters(stanza)['archive_command'], 'pgbackrest --stanza=main archive-push %p');
});

test('rules: one backup host, PostgreSQL hosts to back up, no archive_* of the operator, a warning beside PostgreSQL', () => {
  const two = findings(withBackup() + '  - { name: bk2, address: 10.20.0.52, roles: [backup] }\n');
  assert.deepEqual(two.filter((d) => d.rule.startsWith('backup:')).map((d) => [d.severity, d.rule, d.path]), [['error', 'backup:hosts', 'hosts[10].roles[0]']]);
  const param = findings(withBackup('  postgresql:\n    parameters: { archive_command: "cp %p /x/%f" }\n'));
  assert.deepEqual(param.filter((d) => d.rule.startsWith('backup:')).map((d) => [d.severity, d.rule, d.path]), [['error', 'backup:archive-parameter', 'cluster.postgresql.parameters.archive_command']]);
  assert.equal(param.find((d) => d.rule === 'backup:archive-parameter')?.pos?.line, 6);
  const colocated = findings(minimal.replace('roles: [postgresql, etcd] }\n  - { name: db2', 'roles: [postgresql, etcd, backup] }\n  - { name: db2'));
  assert.deepEqual(colocated.filter((d) => d.rule.startsWith('backup:')).map((d) => [d.severity, d.rule]), [['warning', 'backup:on-postgresql']]);
  // Without a backup host, archive_command is the operator's own.
  assert.deepEqual(findings(minimal.replace('  network: 10.20.0.0/24\n', '  network: 10.20.0.0/24\n  postgresql:\n    parameters: { archive_command: "cp %p /x/%f" }\n')).filter((d) => d.rule.startsWith('backup:')), []);
});

test('tasks: both sides authorize only the other side by address, pin its host key, keep the private key out of every diff; stanza-create is guarded', () => {
  const inv = load(withBackup());
  const db1 = inv.hosts.find((h) => h.name === 'db1')!;
  const pg = backupPgTasks(inv, db1, FACTS, KEYS, hostKeys);
  assert.deepEqual(pg.map((t) => t.name), [
    'packages present pgbackrest openssh-client',
    'directory /etc/pgbackrest',
    'file /etc/pgbackrest/pgbackrest.conf',
    'directory /var/log/pgbackrest',
    'directory /var/lib/postgresql/.ssh',
    'secret file /var/lib/postgresql/.ssh/id_ed25519',
    'file /var/lib/postgresql/.ssh/authorized_keys',
    'file /var/lib/postgresql/.ssh/known_hosts',
    'file /var/lib/postgresql/.ssh/config',
  ]);
  const files = renderFiles(playbooks['etcd-patroni'], inv, fixedSecrets, 'debian', { backupKeys: KEYS, hostKeys });
  const get = (host: string, p: string) => files.find((f) => f.host === host && f.path === p)?.content.toString();
  assert.equal(get('db1', '/var/lib/postgresql/.ssh/authorized_keys'), 'restrict,from="10.20.0.51" ssh-ed25519 AAAArepo airflow-ha test repository\n');
  assert.equal(get('db1', '/var/lib/postgresql/.ssh/known_hosts'), 'bk1,10.20.0.51 ssh-ed25519 AAAAhost-bk1\n');
  assert.equal(get('bk1', '/home/pgbackrest/.ssh/authorized_keys'), 'restrict,from="10.20.0.21,10.20.0.22,10.20.0.23" ssh-ed25519 AAAApg airflow-ha test postgres\n');
  assert.equal(get('bk1', '/home/pgbackrest/.ssh/known_hosts')?.split('\n').length, 4);
  // ssh on either side must not append the other host keys a peer offers (UpdateHostKeys), or the next run would find known_hosts changed.
  for (const [host, p] of [['db1', '/var/lib/postgresql/.ssh/config'], ['bk1', '/home/pgbackrest/.ssh/config']] as const) {
    assert.match(get(host, p) ?? '', /^Host \*\n {4}StrictHostKeyChecking yes\n {4}UpdateHostKeys no\n$/m, `${host}:${p}`);
  }
  const repoTasks = backupRepoTasks(inv, FACTS, KEYS, hostKeys);
  const stanza = repoTasks.find((t) => t.name === 'pgbackrest stanza-create acme-airflow');
  assert.ok(stanza);
  const guardKeys = stanza.facts(FACTS);
  assert.equal(guardKeys.length, 1);
  assert.match(guardKeys[0]!.cmd.toString(), /runuser -u pgbackrest -- pgbackrest --stanza=acme-airflow --output=json info/);
  const exists = stanza.plan(new FactSet(new Map([[guardKeys[0]!.key, { stdout: '', code: 0 }]])), FACTS);
  assert.equal(exists.changed, false);
  const missing = stanza.plan(new FactSet(new Map([[guardKeys[0]!.key, { stdout: '', code: 1 }]])), FACTS);
  assert.deepEqual(missing.changes, ['run cd / && runuser -u pgbackrest -- pgbackrest --stanza=acme-airflow stanza-create']);
  // A host key airflow-ha has not verified blocks the known_hosts file with how to record it.
  const blocked = backupPgTasks(inv, db1, FACTS, KEYS, () => []).find((t) => t.name.endsWith('known_hosts'));
  assert.throws(() => blocked!.plan(new FactSet(new Map()), FACTS), /no host key of bk1 .*--accept-new-host-keys/);
  assert.deepEqual(backupPgTasks(load(minimal), db1, FACTS, undefined, undefined), [], 'nothing without a backup host');
});

/** What pgBackRest 2.45 prints for a stanza with a full and a diff backup (shape of `info --output=json`). */
const INFO = JSON.stringify([
  {
    archive: [{ database: { id: 1, 'repo-key': 1 }, id: '15-1', max: '000000010000000000000009', min: '000000010000000000000003' }],
    backup: [
      {
        archive: { start: '000000010000000000000003', stop: '000000010000000000000003' },
        backrest: { format: 5, version: '2.45' },
        database: { id: 1, 'repo-key': 1 },
        error: false,
        info: { delta: 31457280, repository: { delta: 4194304, size: 4194304 }, size: 31457280 },
        label: '20261207-010000F',
        lsn: { start: '0/3000028', stop: '0/3000100' },
        prior: null,
        reference: null,
        timestamp: { start: 1796605200, stop: 1796605212 },
        type: 'full',
      },
      {
        archive: { start: '000000010000000000000007', stop: '000000010000000000000007' },
        backrest: { format: 5, version: '2.45' },
        database: { id: 1, 'repo-key': 1 },
        error: false,
        info: { delta: 1048576, repository: { delta: 262144, size: 4456448 }, size: 31457280 },
        label: '20261207-010000F_20261208-010000D',
        prior: '20261207-010000F',
        reference: ['20261207-010000F'],
        timestamp: { start: 1796691600, stop: 1796691605 },
        type: 'diff',
      },
    ],
    cipher: 'none',
    db: [{ id: 1, 'repo-key': 1, 'system-id': 7311000000000000000, version: '15' }],
    name: 'acme-airflow',
    repo: [{ cipher: 'none', key: 1, status: { code: 0, message: 'ok' } }],
    status: { code: 0, lock: { backup: { held: false } }, message: 'ok' },
  },
]);

test('pgbackrest info JSON: backups, the newest good one, the archive range, the list table', () => {
  const info = parseInfo(INFO, 'acme-airflow');
  assert.equal(info.statusCode, 0);
  assert.deepEqual(info.backups.map((b) => [b.label, b.type, b.stopSec, b.repoBytes]), [
    ['20261207-010000F', 'full', 1796605212, 4194304],
    ['20261207-010000F_20261208-010000D', 'diff', 1796691605, 4456448],
  ]);
  assert.equal(lastGoodBackup(info)?.type, 'diff');
  assert.equal(info.archiveMax, '000000010000000000000009');
  const table = renderBackupList(info, 1796691605 + 3 * 3600);
  assert.match(table, /^stanza acme-airflow: ok \(status 0\)$/m);
  assert.match(table, /^20261207-010000F_20261208-010000D +diff +2026-12-08T01:00:00Z +5 s +3 h 0 min +30\.0 MiB +4\.3 MiB/m);
  assert.match(table, /^WAL archive: 000000010000000000000003 \.\. 000000010000000000000009$/m);
  // No backup yet (status 2), a checksum error, and what is not the document.
  const empty = parseInfo(JSON.stringify([{ name: 's', status: { code: 2, message: 'no valid backups' }, backup: [], archive: [] }]));
  assert.equal(lastGoodBackup(empty), undefined);
  assert.match(renderBackupList(empty, 0), /\(no backup yet\)/);
  const bad = JSON.parse(INFO) as Array<{ backup: Array<{ error: boolean }> }>;
  bad[0]!.backup[1]!.error = true;
  assert.equal(lastGoodBackup(parseInfo(JSON.stringify(bad)))?.type, 'full');
  assert.throws(() => parseInfo('ERROR: [055]: unable to load info file', 's'), /not JSON/);
  assert.throws(() => parseInfo(INFO, 'other'), /no stanza other/);
});

test('WAL segments: distance on one timeline, pg_stat_archiver line, segments waiting', () => {
  assert.equal(segmentsBetween('000000010000000000000009', '00000001000000000000000B'), 2);
  assert.equal(segmentsBetween('0000000100000000000000FF', '000000010000000100000000'), 1);
  assert.equal(segmentsBetween('000000010000000000000009', '00000002000000000000000B'), undefined);
  const a = parseArchiver('t|00000001000000000000000A|1796691000|0||0|00000001000000000000000B|1796691030\n');
  assert.deepEqual(a, { primary: true, lastArchivedWal: '00000001000000000000000A', lastArchivedSec: 1796691000, failedCount: 0, lastFailedSec: 0, currentWal: '00000001000000000000000B', nowSec: 1796691030 });
  assert.equal(segmentsWaiting(a!), 0);
  assert.equal(parseArchiver('f|||0||0||1796691030')?.primary, false);
  assert.equal(parseArchiver('psql: error: connection refused'), undefined);
  assert.equal(formatAge(90), '90 s');
  assert.equal(formatAge(3 * 86400 + 4 * 3600), '3 d 4 h');
});

const out = (outputs: Record<string, { stdout: string; code: number }>): HostResult => ({ reach: { name: 'x', address: 'x', reachable: true, ms: 1 }, outputs: new Map(Object.entries(outputs)) });

test('status: the last good backup against maxAgeHours, WAL archive lag and failures, degraded never down', () => {
  const inv = load(withBackup());
  const ctx = { inventory: inv };
  assert.deepEqual(backupCheck.probes(ctx, inv.hosts.find((h) => h.name === 'bk1')!).map((p) => p.id), ['backup.info']);
  assert.deepEqual(backupCheck.probes(ctx, inv.hosts.find((h) => h.name === 'db1')!).map((p) => p.id), ['backup.archiver']);
  assert.deepEqual(backupCheck.probes({ inventory: load(minimal) }, load(minimal).hosts[2]!), []);
  const stop = 1796691605;
  const judge = (ageSec: number, archiver: string) =>
    backupCheck.judge(ctx, new Map([
      ['bk1', out({ 'backup.info': { stdout: `${stop + ageSec}\n${INFO}`, code: 0 } })],
      ['db1', out({ 'backup.archiver': { stdout: archiver, code: 0 } })],
      ['db2', out({ 'backup.archiver': { stdout: 'f|||0||0||1', code: 0 } })],
    ])).map((l) => `${l.check} ${l.verdict} ${l.reason}`);
  assert.deepEqual(judge(3600, 't|00000001000000000000000A|1796691000|0||0|00000001000000000000000B|1796691030'), [
    'last backup healthy diff 20261207-010000F_20261208-010000D, 60 min old',
    'WAL archive healthy lag 0 segment(s); last archived 00000001000000000000000A 30 s ago',
  ]);
  assert.deepEqual(judge(27 * 3600, 't|00000001000000000000000A|1796691000|3|00000001000000000000000B|1796691020|00000001000000000000000C|1796691030'), [
    'last backup degraded diff 20261207-010000F_20261208-010000D, 27 h 0 min old (older than 26 h: is the schedule running?)',
    'WAL archive degraded archive_command failing: 00000001000000000000000B failed 10 s ago (3 failures); last archived 00000001000000000000000A 30 s ago',
  ]);
  assert.match(judge(60, 't|000000010000000000000002|1796691000|0||0|00000001000000000000000B|1796691030')[1] ?? '', /^WAL archive degraded 8 segments wait to be archived/);
  const lines = backupCheck.judge(ctx, new Map([['bk1', out({ 'backup.info': { stdout: '', code: 124 } })]]));
  assert.ok(lines.every((l) => l.verdict === 'degraded' && l.critical === false), JSON.stringify(lines));
});

test('--to: ISO 8601 with a zone, normalized to UTC for recovery_target_time; no zone or the future is refused', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  assert.equal(parseTarget('2026-12-07T02:45:00Z', now), '2026-12-07 02:45:00.000+00');
  assert.equal(parseTarget('2026-12-07 06:15:30.25+03:30', now), '2026-12-07 02:45:30.250+00');
  assert.equal(parseTarget('2026-12-07T04:45:00+02', now), '2026-12-07 02:45:00.000+00');
  assert.throws(() => parseTarget('2026-12-07 02:45:00', now), /with its zone/);
  assert.throws(() => parseTarget('yesterday', now), /with its zone/);
  assert.throws(() => parseTarget('2026-12-08T00:00:00Z', now), /in the future/);
});

test('restore plan: flush, pause Airflow, stop Patroni (replicas first), patronictl remove, restore the leader-to-be, start it first, re-create replicas, resume; nothing deleted', () => {
  const inv = load(withBackup());
  const inputs: RestoreInputs = { leader: 'db2', primaryRunning: true, target: '2026-12-07 02:45:00.000+00', stamp: '20261207T030000Z', airflowUnits: new Map([['lb1', ['airflow-scheduler.service', 'airflow-webserver.service']], ['lb2', []]]), family: 'debian' };
  const steps = restorePlan(inv, inputs);
  assert.deepEqual(steps.map((s) => `${s.host}: ${s.name}`), [
    'bk1: flush the WAL written so far into the repository (pgbackrest check)',
    'lb1: pause Airflow on lb1',
    'db1: stop Patroni on db1',
    'db3: stop Patroni on db3',
    'db2: stop Patroni on db2',
    'db2: remove cluster acme-airflow from the DCS (patronictl remove)',
    'db2: move /var/lib/postgresql/15/main aside on db2 (kept as /var/lib/postgresql/15/main.before-restore-20261207T030000Z)',
    'db2: pgbackrest restore on db2 to 2026-12-07 02:45:00.000+00',
    'db2: replay the archive on db2 until it promotes itself',
    'db2: remove the recovery settings on db2 and stop it',
    'db2: start Patroni on db2 (the new leader)',
    'db1: re-create replica db1 (old data kept as /var/lib/postgresql/15/main.before-restore-20261207T030000Z)',
    'db3: re-create replica db3 (old data kept as /var/lib/postgresql/15/main.before-restore-20261207T030000Z)',
    'lb1: resume Airflow on lb1',
    'bk1: check WAL archiving from the restored cluster (pgbackrest check)',
  ]);
  const byName = (n: string) => steps.find((s) => s.name.startsWith(n))!;
  assert.equal(byName('pgbackrest restore').cmd.render(), "cd / && runuser -u postgres -- pgbackrest --stanza=acme-airflow --type=time '--target=2026-12-07 02:45:00.000+00' --target-action=promote restore");
  assert.equal(byName('remove cluster').stdin, 'acme-airflow\nYes I am aware\ndb2\n');
  assert.equal(byName('remove cluster').cmd.render(), 'patronictl -c /etc/patroni/config.yml remove acme-airflow');
  assert.equal(byName('pause Airflow').cmd.render(), 'systemctl stop airflow-scheduler.service airflow-webserver.service');
  const replay = byName('replay').cmd.render();
  for (const part of ['pg_ctl -D /var/lib/postgresql/15/main -W -l /var/lib/postgresql/15/restore-20261207T030000Z.log', '-c listen_addresses=127.0.0.1 -c port=5432 -c hot_standby=off', "select pg_is_in_recovery()"]) assert.ok(replay.includes(part), `${part} in ${replay}`);
  assert.match(byName('remove the recovery').cmd.render(), /ALTER SYSTEM RESET recovery_target_time/);
  // Data directories are moved aside, never removed; every command parses as POSIX sh.
  for (const s of steps) {
    assert.doesNotMatch(s.cmd.render(), /\brm\b/, s.name);
    execFileSync('sh', ['-n', '-c', s.cmd.render()]);
  }
  // No primary: no flush; no target: pgBackRest's default (the end of the archive).
  const latest = restorePlan(inv, { ...inputs, primaryRunning: false, target: undefined, leader: 'db1', airflowUnits: new Map() });
  assert.equal(latest[0]?.name, 'stop Patroni on db2');
  assert.equal(latest.find((s) => s.name.startsWith('pgbackrest restore'))?.cmd.render(), 'cd / && runuser -u postgres -- pgbackrest --stanza=acme-airflow restore');
  assert.throws(() => restorePlan(load(minimal), inputs), /no host has the role backup/);
  assert.throws(() => restorePlan(inv, { ...inputs, leader: 'lb1' }), /lb1 is not a PostgreSQL host/);
});

test('CLI: restore and backup refuse an inventory without a backup host, a bad --to and a bad --type, before connecting', async () => {
  const file = path.join(repo, 'test/fixtures/inventories/good/minimal.yaml');
  const r = await runMain(['restore', '-i', file, '--to', '2026-01-01T00:00:00Z']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no host has the role backup/);
  const to = await runMain(['restore', '-i', file, '--to', 'last tuesday']);
  assert.equal(to.code, 2);
  assert.match(to.stderr, /restore: --to "last tuesday": give an ISO 8601 time with its zone/);
  const type = await runMain(['backup', '-i', file, '--type', 'weekly']);
  assert.equal(type.code, 2);
  assert.match(type.stderr, /--type.*weekly.*full, diff, incr|Allowed choices are full, diff, incr/);
  const list = await runMain(['backup', 'list', '-i', file]);
  assert.equal(list.code, 2);
  assert.match(list.stderr, /no host has the role backup/);
});
