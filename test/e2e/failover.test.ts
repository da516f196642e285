/**
 * No acknowledged write lost when the Patroni leader is powered off, and writes through HAProxy's
 * leader port resume within 20 s. Lab: db1..db3 etcd + PostgreSQL/Patroni, lb1 HAProxy (no VIP:
 * clients use lb1:5000). The cluster is first bootstrapped with synchronous mode off, then the
 * inventory's default (on, 3 hosts) is applied to the live cluster: the DCS setting changes through
 * the leader, and a third run changes nothing. Then a writer on the asynchronous replica inserts
 * ids at ~20/s with autocommit through lb1:5000, logging each acknowledged id; the leader is
 * powered off hard; afterwards every acknowledged id must be in the table of the new leader.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { bootLab, cli, onHost, runEnd, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
const DB = ['db1', 'db2', 'db3'];
const HOSTS = [...DB, 'lb1'];
const ROLES = [['etcd', 'postgresql'], ['etcd', 'postgresql'], ['etcd', 'postgresql'], ['haproxy']];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setHa(ha: Record<string, unknown> | undefined): Promise<void> {
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { cluster: Record<string, unknown> };
  doc.cluster['postgresql'] = ha ? { ha } : {};
  await writeFile(lab.inventoryFile, stringify(doc));
}

async function apply(): Promise<{ changed: number; out: string }> {
  const r = await cli(['apply', '-i', lab.inventoryFile, '--playbook', 'etcd-patroni', '--json', '--accept-new-host-keys']);
  assert.equal(r.exitCode, 0, r.stdout.slice(-4000) + r.stderr);
  return { changed: runEnd(r.stdout).hosts.reduce((n, h) => n + h.changed, 0), out: r.stdout };
}

/** Patroni's `GET /cluster` members, read on `from` from its own REST API. */
async function members(from: string): Promise<Array<{ name: string; role: string; state: string }>> {
  const addr = lab.loaded.inventory.hosts.find((h) => h.name === from)?.address ?? '';
  const r = await on(from, `python3 -c 'import json,urllib.request as u; print(json.dumps(json.load(u.urlopen("http://${addr}:8008/cluster", timeout=3))["members"]))'`);
  return r.code === 0 ? (JSON.parse(r.stdout) as Array<{ name: string; role: string; state: string }>) : [];
}

before(async () => {
  lab = await bootLab('fo', HOSTS, ROLES);
  await setHa({ synchronous: 'off' });
  await apply();
  const hap = await cli(['apply', '-i', lab.inventoryFile, '--playbook', 'haproxy', '--json', '--accept-new-host-keys']);
  assert.equal(hap.exitCode, 0, hap.stdout.slice(-4000) + hap.stderr);
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

test('a live cluster made without synchronous mode gets it from the leader; a second run changes nothing', async () => {
  await setHa(undefined);
  const first = await apply();
  assert.match(first.out, /patroni DCS synchronous_mode: false -> true/);
  let m = await members('db1');
  const t0 = Date.now();
  while (!m.some((x) => x.role === 'sync_standby') && Date.now() - t0 < 60_000) {
    await sleep(1000);
    m = await members('db1');
  }
  assert.ok(m.some((x) => x.role === 'sync_standby'), JSON.stringify(m));
  const again = await apply();
  assert.equal(again.changed, 0, again.out.slice(-3000));
});

/** The writer: autocommit inserts through lb1:5000, one line per acknowledged id (`ok ID T`) or error (`err T`). */
const WRITER = `
import sys, time, psycopg2
host, pw = sys.argv[1], sys.argv[2]
log = open('/root/acks.log', 'w', buffering=1)
conn = None
i = 0
while True:
    try:
        if conn is None:
            conn = psycopg2.connect(host=host, port=5000, user='airflow', password=pw, dbname='airflow', connect_timeout=1,
                                    keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=2, options='-c statement_timeout=5000')
            conn.autocommit = True
        i += 1
        with conn.cursor() as c:
            c.execute('insert into zl_acks(id) values (%s)', (i,))
        log.write('ok %d %.3f\\n' % (i, time.time()))
    except Exception as e:
        log.write('err %.3f %s\\n' % (time.time(), str(e).splitlines()[0] if str(e) else type(e).__name__))
        try:
            conn and conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.05)
    time.sleep(0.05)
`;

test('Patroni leader powered off while writing ~20/s through HAProxy 5000: 0 acknowledged rows lost, write gap <= 20 s', async () => {
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const pw = secrets.airflowDb.reveal();
  const lb = lab.loaded.inventory.hosts.find((h) => h.name === 'lb1')?.address ?? '';
  const m = await members('db1');
  const leader = m.find((x) => x.role === 'leader')?.name ?? '';
  const sync = m.find((x) => x.role === 'sync_standby')?.name ?? '';
  const writer = DB.find((h) => h !== leader && h !== sync) ?? '';
  assert.ok(leader && sync && writer, JSON.stringify(m));
  const psql = (sql: string) => `PGPASSWORD='${pw}' PGCONNECT_TIMEOUT=3 psql -XqAt -h ${lb} -p 5000 -U airflow -d airflow -c "${sql}"`;
  assert.equal((await on(writer, psql('create table if not exists zl_acks(id bigint primary key, at timestamptz default now())'))).code, 0);
  await on(writer, `cat > /root/writer.py <<'PY'\n${WRITER}\nPY`);
  assert.equal((await on(writer, `systemd-run --unit=zl-writer python3 /root/writer.py ${lb} '${pw}'`)).code, 0);
  try {
    await sleep(8000);
    const tOff = Date.now() / 1000;
    await lab.powerOff(leader);
    process.stderr.write(`[failover e2e] leader ${leader} powered off; synchronous standby ${sync}; writer on ${writer}\n`);
    // Wait until writes have been acknowledged again for 5 s, at most 90 s.
    const t0 = Date.now();
    for (;;) {
      await sleep(2000);
      const last = (await on(writer, 'tail -n 1 /root/acks.log')).stdout.trim().split(' ');
      if ((last[0] === 'ok' && Number(last[2]) > tOff + 5 && Date.now() / 1000 - tOff > 20) || Date.now() - t0 > 90_000) break;
    }
  } finally {
    await on(writer, 'systemctl stop zl-writer');
  }
  const log = (await on(writer, 'cat /root/acks.log')).stdout.trim().split('\n');
  const oks = log.filter((l) => l.startsWith('ok ')).map((l) => l.split(' ')).map(([, id, t]) => ({ id: Number(id), t: Number(t) }));
  const errs = log.filter((l) => l.startsWith('err ')).length;
  let gap = 0;
  for (let i = 1; i < oks.length; i++) gap = Math.max(gap, (oks[i]?.t ?? 0) - (oks[i - 1]?.t ?? 0));
  const rows = await on(writer, psql('select id from zl_acks'));
  assert.equal(rows.code, 0, rows.stderr);
  const have = new Set(rows.stdout.trim().split('\n').map(Number));
  const lost = oks.filter((o) => !have.has(o.id));
  const span = (oks.at(-1)?.t ?? 0) - (oks[0]?.t ?? 0);
  const after = await members(writer);
  process.stderr.write(
    `[failover e2e] ${oks.length} acknowledged writes in ${span.toFixed(1)} s (${(oks.length / Math.max(span, 1)).toFixed(1)}/s), ${errs} failed attempts; longest write gap through lb1:5000 ${gap.toFixed(1)} s; ${lost.length} of ${oks.length} acknowledged rows lost; new leader ${after.find((x) => x.role === 'leader')?.name ?? '?'}\n`,
  );
  assert.equal(lost.length, 0, `lost: ${lost.slice(0, 20).map((o) => o.id).join(',')}`);
  assert.ok(oks.length > 100, `only ${oks.length} acknowledged writes`);
  assert.ok(gap <= 20, `longest write gap ${gap.toFixed(1)} s > 20 s`);
  assert.equal(after.find((x) => x.role === 'leader')?.name, sync, 'the synchronous standby took over');
});
