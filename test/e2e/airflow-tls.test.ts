/**
 * Airflow 3 with `cluster.tls.enabled`, end to end: the scheduler, the workers and the other
 * Airflow services reach PostgreSQL (verify-full through HAProxy on the VIP) and RabbitMQ (AMQPS
 * with a client certificate of the cluster CA) over TLS only; the UI is HTTPS at the VIP and from
 * HAProxy to the api-server, and the worker reaches the Execution API over HTTPS. Lab: 3 data hosts (etcd,
 * PostgreSQL, RabbitMQ; HAProxy + the VIP on pg3), one control host with every Airflow role but the
 * worker (HAProxy + the VIP too), one worker-only host.
 *
 * The Airflow installed is the STAND-IN of test/standin/ (not Airflow) built as 3.4.0; its Celery
 * app builds `broker_use_ssl` from `[celery] ssl_active` as Airflow's Celery provider does, and its
 * worker is Debian's real Celery on the real RabbitMQ.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/rules.js';
import type { CheckLine } from '../../src/status/model.js';
import { buildStandin, echoTask, py, standinAirflow } from '../helpers/airflow-lab.js';
import { bootLab, cli, events, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';
import { checksOf, statusUntil } from '../helpers/status.js';

const VERSION = AIRFLOW_3_NEWEST;
const HOSTS = ['pg1', 'pg2', 'pg3', 'af1', 'w1'];
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const CONTROL = ['haproxy', 'scheduler', 'webserver', 'triggerer', 'dag_processor', 'flower'];
const MQ = ['pg1', 'pg2', 'pg3'];

let lab: TestLab;
const wheelhouse = tempDir('ah-wheelhouse-tls-');

before(async () => {
  await buildStandin(VERSION, wheelhouse);
  lab = await bootLab('aftls', HOSTS, [DATA, DATA, [...DATA, 'haproxy'], CONTROL, ['worker']], (net) => ({
    vips: [{ name: 'airflow-vip', address: `${net}.200`, role: 'haproxy', routerId: 75 }],
    versions: { airflow: VERSION },
    ports: { haproxyReplica: 5001 },
    airflow: standinAirflow(wheelhouse, 2),
    tls: { enabled: true },
  }));
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { hosts: Array<Record<string, unknown>> };
  // The lab's containers see this shared machine's load average, not their own.
  for (const h of doc.hosts) h['vars'] = { statusLoadPerCpu: 1000 };
  await writeFile(lab.inventoryFile, `# The Airflow ${VERSION} lab with cluster.tls: ${HOSTS.join(', ')}.\n${stringify(doc)}`);
});

after(() => tearDown(lab, wheelhouse));

const inv = () => ['-i', lab.inventoryFile];
const addr = (name: string) => lab.loaded.inventory.hosts.find((h) => h.name === name)!.address;
const on = async (host: string, cmd: string) => {
  const r = await onHost(lab.inventoryFile, host, cmd);
  assert.equal(r.code, 0, `${host}: ${cmd}\n${r.stdout}${r.stderr}`);
  return r.stdout;
};

/**
 * From a host: a TCP connect to ADDRESS:PORT, then (with `tls`) a TLS handshake verified against the
 * cluster CA, with or without the Airflow user's certificate, then the AMQP 0-9-1 protocol header.
 * Prints `open`/`refused`/`timeout` without tls, else `amqp` (the broker answered Connection.Start,
 * frame type 1) or `rejected <error>`.
 */
const PROBE = `
import socket, ssl, sys
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.settimeout(5)
try:
    s.connect((addr, port))
except socket.timeout:
    sys.exit(print("timeout"))
except ConnectionRefusedError:
    sys.exit(print("refused"))
if mode == "tcp":
    sys.exit(print("open"))
ctx = ssl.create_default_context(cafile="/etc/airflow-ha/tls/ca.crt")
ctx.check_hostname = False
if mode == "cert":
    ctx.load_cert_chain("/etc/airflow-ha/tls/host.crt", "/etc/airflow-ha/tls/host.key")
try:
    t = ctx.wrap_socket(s)
    t.sendall(b"AMQP\\x00\\x00\\x09\\x01")
    first = t.recv(1)
    print("amqp" if first == b"\\x01" else "rejected " + repr(first))
except (ssl.SSLError, OSError) as e:
    print("rejected " + type(e).__name__)
`;
/** From a host: GET URL (HTTPS verified against the cluster CA); prints the HTTP status or `error <why>`. */
const MGMT = `
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile="/etc/airflow-ha/tls/ca.crt")
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5, context=ctx).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception as e:
    print("error " + type(e).__name__)
`;
/** From a host: GET URL in plain HTTP without following a redirect; prints `<status> <Location>` or `error <why>`. */
const PLAIN = `
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
try:
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
    c.request("GET", u.path or "/")
    r = c.getresponse()
    print(r.status, r.getheader("Location"))
except Exception as e:
    print("error " + type(e).__name__)
`;
async function broker(host: string, target: string, port: number, mode: 'tcp' | 'cert' | 'nocert'): Promise<string> {
  const r = await py(lab.inventoryFile, host, PROBE, [addr(target), String(port), mode]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** Every line healthy except host load (the lab's containers see this shared machine's load average). */
const notHealthy = (lines: CheckLine[]) => lines.filter((l) => l.verdict !== 'healthy' && !(l.component === 'hosts' && /^load /.test(l.reason ?? '')));

test(`Airflow ${VERSION} with cluster.tls: Celery over AMQPS with client certificates (plaintext AMQP closed, a client without a certificate refused), the management API, the UI (re-encrypted to the api-server), Flower and HAProxy's stats on HTTPS only, the worker's Execution API over HTTPS, the metadata database over verify-full, a task on the worker, status healthy, a second bootstrap changes nothing`, async () => {
  const first = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  if (first.exitCode !== 0) {
    const diag = await Promise.all(['af1', 'w1', 'pg1'].map((h) => onHost(lab.inventoryFile, h, `journalctl -u 'airflow-*' -u rabbitmq-server --no-pager | tail -40`)));
    assert.fail(`bootstrap exit ${first.exitCode}\n${first.stdout.slice(-5000)}${first.stderr}\n${diag.map((d) => d.stdout).join('\n')}`);
  }

  // RabbitMQ listens on 5671 only, its key RabbitMQ's own.
  for (const h of MQ) {
    assert.equal((await on(h, 'ss -Hltn "sport = :5672" | wc -l')).trim(), '0', `${h} listens on 5672`);
    assert.equal((await on(h, 'ss -Hltn "sport = :5671" | wc -l')).trim() !== '0', true, `${h} does not listen on 5671`);
    assert.equal((await on(h, 'stat -c "%a %U" /etc/airflow-ha/tls/rabbitmq.key')).trim(), '600 rabbitmq');
  }
  // From the worker: plaintext AMQP does not connect; TLS without a client certificate is refused; with one the broker answers.
  assert.notEqual(await broker('w1', 'pg1', 5672, 'tcp'), 'open');
  assert.match(await broker('w1', 'pg1', 5671, 'nocert'), /^rejected /);
  assert.equal(await broker('w1', 'pg1', 5671, 'cert'), 'amqp');

  // The management API: HTTPS on 15671 for the network (the certificate verified against the
  // cluster CA and for the node's address; no credentials, so 401), plain HTTP on 127.0.0.1 only.
  for (const h of MQ) {
    const listeners = (await on(h, 'ss -Hltn "sport = :15672" | awk \'{print $4}\'')).trim();
    assert.equal(listeners, '127.0.0.1:15672', `${h}: the HTTP listener`);
  }
  const https = await py(lab.inventoryFile, 'pg2', MGMT, [`https://${addr('pg1')}:15671/api/overview`]);
  assert.equal(https.stdout.trim(), '401', https.stderr);
  assert.match((await py(lab.inventoryFile, 'pg2', MGMT, [`http://${addr('pg1')}:15672/api/overview`])).stdout, /^error /);

  // Flower and HAProxy's stats page at the VIP: HTTPS with the VIP holder's certificate (verified
  // for the VIP's address; both ask for a login, so 401), no plain HTTP; status reads the stats on 127.0.0.1.
  const vip = lab.loaded.inventory.cluster.vips[0]!.address;
  for (const port of [5556, 7000]) {
    const r = await py(lab.inventoryFile, 'pg3', MGMT, [`https://${vip}:${port}/`]);
    assert.equal(r.stdout.trim(), '401', `https://${vip}:${port}/ ${r.stderr}`);
    assert.match((await py(lab.inventoryFile, 'pg3', MGMT, [`http://${vip}:${port}/`])).stdout, /^error /, `http://${vip}:${port}/`);
  }

  // The Airflow UI at the VIP: HTTPS on 443 (verified for the VIP's address), the plain port only
  // redirects there; HAProxy re-encrypts to the api-server, which serves HTTPS itself (verified for
  // its own address) and no plain HTTP.
  const health = '/api/v2/monitor/health';
  const ui = await py(lab.inventoryFile, 'w1', MGMT, [`https://${vip}${health}`]);
  assert.equal(ui.stdout.trim(), '200', `https://${vip}${health} ${ui.stderr}`);
  const redirect = await py(lab.inventoryFile, 'w1', PLAIN, [`http://${vip}${health}`]);
  assert.equal(redirect.stdout.trim(), `301 https://${vip}${health}`, redirect.stderr);
  const direct = await py(lab.inventoryFile, 'pg3', MGMT, [`https://${addr('af1')}:8080${health}`]);
  assert.equal(direct.stdout.trim(), '200', direct.stderr);
  assert.match((await py(lab.inventoryFile, 'pg3', PLAIN, [`http://${addr('af1')}:8080${health}`])).stdout, /^error /, 'the api-server answers plain HTTP');
  // The worker reached the Execution API over HTTPS, trusting the CA at the end of `[api] ssl_cert`.
  assert.match(await on('w1', 'grep -x "execution_api_server_url = .*" /opt/airflow/airflow.cfg'), new RegExp(`= https://${vip.replaceAll('.', '\\.')}/execution/`));
  assert.match(await on('w1', 'journalctl -u airflow-worker --no-pager -o cat | grep "Execution API at" | tail -n 1'), new RegExp(`Execution API at https://${vip.replaceAll('.', '\\.')}/execution/ answers`));

  // A Celery task on the worker-only host, sent from the scheduler host: both ends over AMQPS.
  const r = await echoTask(lab.inventoryFile, 'af1', 'default');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.result, { hostname: 'w1', tag: 'default', queue: 'default' });
  // Every connection of the airflow user on every node is TLS, the worker's among them. (The sender's
  // connection lasted as long as the send: that it got through, with 5672 closed, is its proof.)
  const conns = (await Promise.all(MQ.map((h) => on(h, 'rabbitmqctl -q list_connections user ssl peer_host --no-table-headers')))).join('\n');
  const airflow = conns.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[0] === 'airflow');
  assert.ok(airflow.length > 0, conns);
  assert.deepEqual([...new Set(airflow.map((f) => f[1]))], ['true'], conns);
  assert.ok(airflow.some((f) => f[2] === addr('w1')), `no TLS connection from w1:\n${conns}`);

  // The metadata database: every backend of the airflow role is on SSL (pg_stat_ssl), on the leader.
  const ssl = (await Promise.all(MQ.map((h) => on(h, `runuser -u postgres -- psql -Atc "select count(*) filter (where s.ssl), count(*) from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = 'airflow'"`)))).map((x) => x.trim());
  const [withSsl, total] = ssl.map((x) => x.split('|').map(Number)).reduce((a, b) => [a[0]! + b[0]!, a[1]! + b[1]!], [0, 0]);
  assert.ok(total! > 0 && withSsl === total, `airflow backends on SSL: ${ssl.join(', ')}`);

  // status: every check healthy, the certificates' days left among them.
  const healthy = await statusUntil(lab.inventoryFile, 'healthy', (s) => notHealthy(checksOf(s)).length === 0, 180_000);
  assert.ok(checksOf(healthy).some((l) => l.component === 'tls'), 'status has the certificate lines');

  // A second bootstrap: zero changes, no handler.
  const second = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((x) => [x.host, x.changed]), HOSTS.map((x) => [x, 0]));
  assert.equal(events(second.stdout).filter((e) => e.type === 'handler').length, 0);
});

/**
 * The writer on af1: through the VIP, with airflow.cfg's own URL (verify-full against the cluster
 * CA), one INSERT a half second on one connection (made anew after an error) until /tmp/writes.stop
 * exists; a line per try, `EPOCH OK` or `EPOCH FAIL <the error's first line>`.
 */
const WRITES = `
import configparser, os, time, psycopg2
c = configparser.ConfigParser(interpolation=None)
c.read("/opt/airflow/airflow.cfg")
url = c.get("database", "sql_alchemy_conn").replace("postgresql+psycopg2://", "postgresql://")
conn = None
with open("/tmp/writes.log", "w", buffering=1) as out:
    while not os.path.exists("/tmp/writes.stop"):
        t = time.time()
        try:
            if conn is None:
                conn = psycopg2.connect(url, connect_timeout=3)
                conn.autocommit = True
                conn.cursor().execute("create table if not exists certs_rotate_writes (t double precision)")
            conn.cursor().execute("insert into certs_rotate_writes values (%s)", (t,))
            out.write("%.1f OK\\n" % t)
        except Exception as e:
            out.write("%.1f FAIL %s\\n" % (t, (str(e).strip().splitlines() or [type(e).__name__])[0]))
            try:
                conn.close()
            except Exception:
                pass
            conn = None
        time.sleep(max(0, 0.5 - (time.time() - t)))
`;

/** The longest time between two successful writes around failed ones (seconds), the counts, and each failure's error. */
function longestGap(log: string): { gap: number; ok: number; fail: number; errors: string[] } {
  const rows = log.trim().split('\n').map((l) => l.split(' ')).map(([t, v, ...why]) => ({ t: Number(t), ok: v === 'OK', why: why.join(' ') }));
  let gap = 0;
  let lastOk: number | undefined;
  for (const r of rows) {
    if (!r.ok) continue;
    if (lastOk !== undefined) gap = Math.max(gap, r.t - lastOk);
    lastOk = r.t;
  }
  return { gap, ok: rows.filter((r) => r.ok).length, fail: rows.filter((r) => !r.ok).length, errors: rows.filter((r) => !r.ok).map((r) => r.why) };
}

test('certs rotate: every host a new key and certificate from the same CA, served by etcd, Patroni, PostgreSQL, RabbitMQ, HAProxy and the api-server afterwards; writes through the VIP go on; a task still runs; status healthy; a second bootstrap changes nothing', async () => {
  const vip = lab.loaded.inventory.cluster.vips[0]!.address;
  // The VIP serves the certificate of the HAProxy host that holds it.
  const holder = (await on('pg3', `ip -o -4 addr show | grep -c ' ${vip}/' || true`)).trim() !== '0' ? 'pg3' : 'af1';
  // host:port (-starttls) of every TLS listener, each asked from pg3 with root's client certificate.
  const listeners: Array<[string, string, string]> = [
    ['pg1', `${addr('pg1')}:2379`, ''],
    ['pg1', `${addr('pg1')}:8008`, ''],
    ['pg1', `${addr('pg1')}:5432`, '-starttls postgres'],
    ['pg2', `${addr('pg2')}:5671`, ''],
    ['pg2', `${addr('pg2')}:15671`, ''],
    [holder, `${vip}:443`, ''],
    ['af1', `${addr('af1')}:8080`, ''],
  ];
  const served = async () =>
    Promise.all(
      listeners.map(async ([, target, starttls]) =>
        (await on('pg3', `echo | openssl s_client -connect ${target} ${starttls} -cert /etc/airflow-ha/tls/host.crt -key /etc/airflow-ha/tls/host.key 2>/dev/null | openssl x509 -noout -serial`)).trim().replace(/^serial=/, '').toLowerCase(),
      ),
    );
  const stateSerial = async (host: string) => new X509Certificate(await readFile(path.join(lab.loaded.stateDir, 'tls', 'hosts', `${host}.crt`), 'utf8')).serialNumber.toLowerCase();
  const before = await served();
  assert.deepEqual(before, await Promise.all(listeners.map(([h]) => stateSerial(h))), 'each listener serves its host\'s certificate');

  const check = await cli(['certs', 'rotate', ...inv(), '--check']);
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  assert.match(check.stdout, new RegExp(`for ${HOSTS.length} host\\(s\\)`));
  assert.deepEqual(await served(), before, '--check changes nothing');

  await on('af1', 'rm -f /tmp/writes.stop /tmp/writes.log');
  const writer = py(lab.inventoryFile, 'af1', WRITES);
  await new Promise((r) => setTimeout(r, 3000));
  const t0 = Date.now();
  const rotate = await cli(['certs', 'rotate', ...inv(), '--json']);
  const sec = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 3000));
  await on('af1', 'touch /tmp/writes.stop');
  const w = await writer;
  assert.equal(w.code, 0, w.stderr);
  const writes = longestGap(await on('af1', 'cat /tmp/writes.log'));
  process.stderr.write(`certs rotate on ${HOSTS.length} hosts: ${sec.toFixed(0)} s; writes through the VIP: ${writes.ok} ok, ${writes.fail} failed, longest gap ${writes.gap.toFixed(1)} s${writes.errors.length ? `; failures: ${[...new Set(writes.errors)].join(' | ')}` : ''}\n`);
  assert.equal(rotate.exitCode, 0, rotate.stdout.slice(-5000) + rotate.stderr);
  assert.match(rotate.stderr, /renewed pg1: valid until \d{4}-\d\d-\d\d/);

  // Every listener now serves its host's new certificate.
  const after = await served();
  assert.deepEqual(after, await Promise.all(listeners.map(([h]) => stateSerial(h))));
  for (let i = 0; i < listeners.length; i++) assert.notEqual(after[i], before[i], `${listeners[i]![1]} still serves the old certificate`);
  // Writes went on: no gap longer than a Patroni switchover's (the issue's bound for a TLS change).
  assert.ok(writes.ok > 0 && writes.gap <= 20, `longest write gap ${writes.gap.toFixed(1)} s`);
  // HAProxy's reload keeps each server's state (README "HAProxy reload"): no write reached a replica.
  assert.deepEqual(writes.errors.filter((e) => /read-only transaction/.test(e)), [], 'a write went to a replica through the leader port');

  // The broker and the worker with their new client certificates.
  const r = await echoTask(lab.inventoryFile, 'af1', 'default');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.result, { hostname: 'w1', tag: 'default', queue: 'default' });
  await statusUntil(lab.inventoryFile, 'healthy', (s) => notHealthy(checksOf(s)).length === 0, 180_000);
  const second = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((x) => [x.host, x.changed]), HOSTS.map((x) => [x, 0]));
});
