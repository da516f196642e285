/**
 * TLS end to end (`cluster.tls.enabled`) on the smallest data plane that shows every hop: db1 and
 * db2 (PostgreSQL + Patroni, etcd, HAProxy + keepalived with a VIP) and e3 (a third etcd member, so
 * the peers' TLS carries a real quorum). The real CLI applies the etcd-patroni and haproxy
 * playbooks; then: psql through VIP:5000 with sslmode=verify-full against the cluster CA works (the
 * leader's certificate names the VIP) and a plaintext connection is refused; replication runs over
 * TLS; etcd refuses a client without a certificate and plain HTTP; status is healthy with each
 * certificate's days left; a second run of both playbooks changes and restarts nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { bootLab, cli, events, ignoreSharedLoad, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { checksOf, statusUntil } from '../helpers/status.js';

let lab: TestLab;
let vip = '';
const HOSTS = ['db1', 'db2', 'e3'];
const DB = ['postgresql', 'etcd', 'haproxy'];
const CA = '/etc/airflow-ha/tls/ca.crt';

before(async () => {
  lab = await bootLab('tls', HOSTS, [DB, DB, ['etcd']], (net) => {
    vip = `${net}.100`;
    return { vips: [{ name: 'db-vip', address: vip, role: 'haproxy', routerId: 79 }], tls: { enabled: true } };
  });
  // The lab's containers see this shared machine's load average, not their own: raise the bar.
  await ignoreSharedLoad(lab);
});

after(() => tearDown(lab));

const inv = () => ['-i', lab.inventoryFile];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const addr = (name: string) => lab.loaded.inventory.hosts.find((h) => h.name === name)?.address ?? '';

async function starts(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of HOSTS) out[h] = (await on(h, 'systemctl show -p ExecMainStartTimestampMonotonic --value etcd patroni haproxy keepalived 2>/dev/null')).stdout.trim();
  return out;
}

const apply = (playbook: string, first = false) => cli(['apply', ...inv(), '--playbook', playbook, '--json', ...(first ? ['--accept-new-host-keys'] : [])]);

test('TLS on: verify-full through the VIP, plaintext refused, etcd refuses a client without a certificate, status healthy, a second run changes nothing', { timeout: 1_800_000 }, async () => {
  const t0 = Date.now();
  for (const pb of ['etcd-patroni', 'haproxy']) {
    const r = await apply(pb, true);
    assert.equal(r.exitCode, 0, `${pb}: ${r.stdout.slice(-5000)}${r.stderr.slice(-2000)}`);
  }
  process.stderr.write(`[tls e2e] etcd-patroni + haproxy applied with TLS in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);

  // The CA and keys on the operator's side: 0600 in a 0700 folder.
  const tlsDir = path.join(lab.loaded.stateDir, 'tls');
  assert.equal((await stat(tlsDir)).mode & 0o777, 0o700);
  assert.equal((await stat(path.join(tlsDir, 'ca.key'))).mode & 0o777, 0o600);
  // On the hosts: root's key and each service's copy, 0600 and owned by the reader.
  const keys = await on('db1', 'stat -c "%n %a %U" /etc/airflow-ha/tls/*.key');
  assert.equal(keys.stdout.trim(), ['/etc/airflow-ha/tls/etcd.key 600 etcd', '/etc/airflow-ha/tls/host.key 600 root', '/etc/airflow-ha/tls/postgres.key 600 postgres'].join('\n'));

  const secrets = parse(await readFile(path.join(lab.loaded.stateDir, 'secrets.yaml'), 'utf8')) as Record<string, string>;
  const pw = secrets['airflowDb'];
  assert.ok(pw);
  // verify-full at the VIP: TLS, the certificate signed by the cluster CA and naming the VIP.
  const conn = (mode: string, host = vip) => `host=${host} port=5000 dbname=airflow user=airflow sslmode=${mode} sslrootcert=${CA} connect_timeout=5`;
  // e3 has no psql: the client is db2, through the VIP as Airflow would be.
  const ok = await on('db2', `PGPASSWORD='${pw}' psql -XqAt "${conn('verify-full')}" -c "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"`);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout.trim(), /^t\|TLSv1\.[23]$/, ok.stdout);
  const plain = await on('db2', `PGPASSWORD='${pw}' psql -XqAt "${conn('disable')}" -c "select 1"`);
  assert.notEqual(plain.code, 0, 'a plaintext connection is refused');
  assert.match(plain.stderr, /no pg_hba\.conf entry .*no encryption/, plain.stderr);
  // A name the certificate does not carry fails verify-full (the check is real).
  const wrongName = await on('db2', `PGPASSWORD='${pw}' psql -XqAt "host=localhost.invalid hostaddr=${vip} port=5000 dbname=airflow user=airflow sslmode=verify-full sslrootcert=${CA} connect_timeout=5" -c "select 1"`);
  assert.notEqual(wrongName.code, 0);
  assert.match(wrongName.stderr, /does not match host name "localhost\.invalid"/, wrongName.stderr);

  // Streaming replication over TLS: the leader's WAL sender sessions are encrypted.
  const leader = (await on('db1', `runuser -u postgres -- psql -XAtc "select pg_is_in_recovery()"`)).stdout.trim() === 'f' ? 'db1' : 'db2';
  const repl = await on(leader, `runuser -u postgres -- psql -XAtc "select s.ssl from pg_stat_replication r join pg_stat_ssl s using (pid)"`);
  assert.equal(repl.stdout.trim(), 't', `replication over TLS on ${leader}: ${repl.stdout}${repl.stderr}`);

  // etcd: a client certificate is required; plain HTTP is not served.
  const eps = HOSTS.map((h) => `https://${addr(h)}:2379`).join(',');
  const noCert = await on('e3', `ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=4s --endpoints=https://${addr('db1')}:2379 --cacert=${CA} get /service --prefix --keys-only`);
  assert.notEqual(noCert.code, 0, `etcd served a client without a certificate: ${noCert.stdout}`);
  const http = await on('e3', `ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=4s --endpoints=http://${addr('db1')}:2379 get /service --prefix --keys-only`);
  assert.notEqual(http.code, 0, 'etcd served plain HTTP');
  const withCert = await on('e3', `ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=4s --endpoints=${eps} --cacert=${CA} --cert=/etc/airflow-ha/tls/host.crt --key=/etc/airflow-ha/tls/host.key endpoint health --cluster 2>&1`);
  assert.equal((withCert.stdout.match(/ is healthy/g) ?? []).length, 3, withCert.stdout);

  // status: healthy, every certificate line with its days left.
  const s = await statusUntil(lab.inventoryFile, 'healthy', (x) => x.exitCode === 0 && checksOf(x).every((l) => l.verdict === 'healthy'), 180_000);
  const certLines = checksOf(s).filter((l) => l.component === 'tls');
  assert.deepEqual(certLines.map((l) => l.check), HOSTS.map((h) => `certificate ${h}`));
  for (const l of certLines) assert.match(l.reason ?? '', /^host certificate valid until \d{4}-\d\d-\d\d \((82[45]) days\), CA valid until/, JSON.stringify(l));
  process.stderr.write(`[tls e2e] status: ${s.report.verdict}; ${certLines.map((l) => `${l.host}: ${l.reason}`).join('; ')}\n`);

  // A second run of both playbooks: zero changes, no handler, no service restarted.
  const before = await starts();
  for (const pb of ['etcd-patroni', 'haproxy']) {
    const r = await apply(pb);
    assert.equal(r.exitCode, 0, `${pb}: ${r.stdout.slice(-4000)}${r.stderr}`);
    const changed = events(r.stdout).filter((e) => e.type === 'task' && e['status'] === 'changed');
    assert.deepEqual(runEnd(r.stdout).hosts.map((h) => h.changed), runEnd(r.stdout).hosts.map(() => 0), `${pb}: ${JSON.stringify(changed)}`);
    assert.equal(events(r.stdout).filter((e) => e.type === 'handler').length, 0, pb);
  }
  assert.deepEqual(await starts(), before, 'no service restarted');
});
