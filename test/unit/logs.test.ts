/**
 * `airflow-ha logs`: which hosts and units a component has (the names the components use), the
 * journalctl line of each host, bad requests refused, and the output prefixed per host.
 */
import path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sh } from '../../src/core/cmd.js';
import { ExitCode, InputError } from '../../src/core/errors.js';
import { loadInventory } from '../../src/inventory/load.js';
import { airflowLayout } from '../../src/components/airflow.js';
import { LOG_COMPONENTS } from '../../src/components/units.js';
import { LinePrefixer, logsPlan, streamLogs, type LogsCommand } from '../../src/cli/logs.js';
import { LocalTransport } from '../helpers/local.js';
import { ROOT } from '../helpers/lab.js';
import { runMain } from '../helpers/cli.js';

const lab = async () => (await loadInventory(path.join(ROOT, 'inventory', 'lab.yaml'))).inventory;
const lines = (plan: LogsCommand[]) => plan.map((p) => `${p.host}: ${p.cmd.render()}`);

describe('logs: hosts, units and command lines', () => {
  it('patroni: each postgresql host, the last 100 lines by default', async () => {
    assert.deepEqual(lines(logsPlan(await lab(), { component: 'patroni' })), [
      'sql1: journalctl --no-pager -o short-iso -u patroni.service -n 100',
      'sql2: journalctl --no-pager -o short-iso -u patroni.service -n 100',
      'sql3: journalctl --no-pager -o short-iso -u patroni.service -n 100',
    ]);
  });

  it('-n, --since (quoted as one word) and -f; --since alone shows all lines since then', async () => {
    const inv = await lab();
    assert.deepEqual(lines(logsPlan(inv, { component: 'rabbitmq', hosts: 'mq2', lines: '20', since: '2024-05-01 10:00', follow: true })), [
      "mq2: journalctl --no-pager -o short-iso -u rabbitmq-server.service -n 20 --since '2024-05-01 10:00' -f",
    ]);
    assert.deepEqual(lines(logsPlan(inv, { component: 'etcd', hosts: 'sql1,sql3', since: '-1h' })), [
      'sql1: journalctl --no-pager -o short-iso -u etcd.service --since -1h',
      'sql3: journalctl --no-pager -o short-iso -u etcd.service --since -1h',
    ]);
  });

  it('Airflow services: the unit airflow.ts gives the service, on the hosts that run it', async () => {
    const inv = await lab();
    const units = airflowLayout(inv.cluster.versions.airflow).units;
    const plan = logsPlan(inv, { component: 'dag-processor' });
    assert.deepEqual(plan.map((p) => [p.host, p.units]), [['ftp', [units['dag-processor']]], ['nfs2', [units['dag-processor']]]]);
    assert.deepEqual(logsPlan(inv, { component: 'webserver' }).map((p) => [p.host, p.units]), [['airflow', [units.webserver]], ['haproxy2', [units.webserver]]]);
    assert.deepEqual(logsPlan(inv, { component: 'scheduler' }).map((p) => p.host), ['airflow', 'scheduler2']);
  });

  it('keepalived runs where a VIP\'s role is; nfs names its three services; firewall is on every host', async () => {
    const inv = await lab();
    assert.deepEqual(logsPlan(inv, { component: 'keepalived' }).map((p) => p.host), ['airflow', 'haproxy2', 'ftp', 'nfs2']);
    assert.deepEqual(logsPlan(inv, { component: 'nfs', hosts: 'ftp' })[0]?.units, ['nfs-server.service', 'airflow-ha-dags-pull.service', 'rsync.service', 'rsyncd.service']);
    assert.equal(logsPlan(inv, { component: 'firewall' }).length, inv.hosts.length);
  });

  it('refuses an unknown component (listing them), a host not of the component (listing its hosts), bad -n and --since', async () => {
    const inv = await lab();
    assert.throws(() => logsPlan(inv, { component: 'postgres' }), (e: unknown) => e instanceof InputError && e.message === `unknown component "postgres" (known: ${LOG_COMPONENTS.join(', ')})`);
    assert.throws(() => logsPlan(inv, { component: 'patroni', hosts: 'sql1,mq1' }), /--host mq1: not a host of patroni \(its hosts: sql1, sql2, sql3\)/);
    assert.throws(() => logsPlan(inv, { component: 'patroni', lines: '-5' }), /-n takes a whole number of lines, got "-5"/);
    assert.throws(() => logsPlan(inv, { component: 'patroni', since: 'a\nb' }), /--since takes a time/);
  });

  it('the CLI: an unknown component is exit 2 before anything connects', async () => {
    const r = await runMain(['logs', '-i', 'inventory/lab.yaml', 'nosuch', '-F', 'none']);
    assert.equal(r.code, ExitCode.badInput);
    assert.match(r.stderr, /unknown component "nosuch" \(known: etcd, patroni, /);
  });
});

describe('logs: each line prefixed with its host', () => {
  it('joins lines split across chunks, holds a partial last line until flushed, pads the name', () => {
    const out: string[] = [];
    const p = new LinePrefixer('mq1', 6, (t) => out.push(t));
    p.push('first li');
    p.push('ne\r\nsecond\nthi');
    assert.deepEqual(out, ['mq1    | first line\nmq1    | second\n']);
    p.flush();
    assert.equal(out.join(''), 'mq1    | first line\nmq1    | second\nmq1    | thi\n');
    p.flush();
    assert.equal(out.length, 2, 'nothing more to flush');
  });

  it('streams every host in parallel; an unreachable host is named and the exit code is 3', async () => {
    const plan: LogsCommand[] = [
      { host: 'sql1', units: [], cmd: sh`printf 'a 1\\na 2\\n'` },
      { host: 'scheduler2', units: [], cmd: sh`printf 'b 1\\nb 2 no newline'; echo oops >&2` },
      { host: 'mq1', units: [], cmd: sh`true` },
    ];
    let out = '';
    let err = '';
    const code = await streamLogs(plan, new LocalTransport(new Set(['mq1'])), (t) => (out += t), (t) => (err += t));
    assert.equal(code, ExitCode.unreachable);
    const sorted = out.split('\n').filter(Boolean).sort();
    assert.deepEqual(sorted, ['scheduler2 | b 1', 'scheduler2 | b 2 no newline', 'sql1       | a 1', 'sql1       | a 2']);
    assert.match(err, /^scheduler2 \| oops$/m);
    assert.match(err, /^mq1        \| .*ECONNREFUSED \(test\)/m);
  });

  it('a journalctl that fails makes the exit code 1; an abort (Ctrl-C while following) ends it as ok', async () => {
    const failing: LogsCommand[] = [{ host: 'sql1', units: [], cmd: sh`echo 'No journal files were found.' >&2; exit 1` }];
    let err = '';
    assert.equal(await streamLogs(failing, new LocalTransport(), () => undefined, (t) => (err += t)), ExitCode.taskFailed);
    assert.match(err, /sql1 \| No journal files were found\./);
    const abort = new AbortController();
    abort.abort(); // Ctrl-C before the first host answered
    const code = await streamLogs([{ host: 'mq1', units: [], cmd: sh`true` }], new LocalTransport(new Set(['mq1'])), () => undefined, () => undefined, abort.signal);
    assert.equal(code, ExitCode.ok);
  });
});
