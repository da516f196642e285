/**
 * TLS (`cluster.tls`): the SANs each seed host's certificate must carry, the CA and certificates
 * made with this machine's openssl in a temp state folder (made once, kept on a re-run, re-made
 * for a host whose names change, refused when a key is readable by others, the site's own CA
 * used), the configs of etcd, Patroni, HAProxy and Airflow with TLS on against golden files
 * (UPDATE_GOLDEN=1 rewrites them; haproxy.cfg also accepted by the real `haproxy -c`), and the
 * status check of certificate expiry.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { airflowServices, celeryCliModule, databaseQuery, executionApiUrl, renderAirflowConfig, webserverHealthCheck, workerPingCheck } from '../../src/components/airflow.js';
import { decideEtcdState, etcdctl, etcdEndpoints, etcdMemberListFact, parseMemberListAnswer, renderEtcdEnv } from '../../src/components/etcd.js';
import { TLS_FAILED_STATUS } from '../../src/tasks/https.js';
import { haproxyConfig } from '../../src/components/haproxy.js';
import { patroniPgHba, renderPatroniConfig } from '../../src/components/patroni.js';
import { tlsHostTasks } from '../../src/components/tls.js';
import { brokerPort, rabbitmqNodeTasks, renderRabbitmqConf, restartIfStaleHandler } from '../../src/components/rabbitmq.js';
import { hostPortClaims } from '../../src/inventory/ports.js';
import { Secret } from '../../src/core/secret.js';
import { InputError } from '../../src/core/errors.js';
import { caFiles, loadOrCreateTls } from '../../src/cli/tls.js';
import { rotateHosts } from '../../src/cli/certs.js';
import { renderFiles } from '../../src/cli/render.js';
import { clusterEndpoints } from '../../src/cli/endpoints.js';
import type { Inventory } from '../../src/inventory/schema.js';
import type { TlsMaterial } from '../../src/run/playbook.js';
import { expiryVerdict, parseCertDates, parseNotAfter, tlsLines } from '../../src/status/tls.js';
import { hostSans, parseSubjectAltName, sanExtension } from '../../src/tls/plan.js';
import { etcdPatroni } from '../../playbooks/etcd-patroni.js';
import { airflow as airflowPlaybook } from '../../playbooks/airflow.js';
import { assertGolden, fixedOperator, fixedSecrets, seedInventory, seedInventoryOnAirflow } from '../helpers/golden.js';
import { airflowCheck } from '../../src/status/checks.js';
import { tempDir } from '../helpers/local.js';

/** The seed inventory with `cluster.tls.enabled`. */
async function seedTls(): Promise<Inventory> {
  const inv = await seedInventory();
  return { ...inv, cluster: { ...inv.cluster, tls: { ...inv.cluster.tls, enabled: true } } };
}

const host = (inv: Inventory, name: string) => {
  const h = inv.hosts.find((x) => x.name === name);
  assert.ok(h, name);
  return h;
};

/** Recognisable stand-ins for golden files and offline renders: never a real certificate or key. */
const fixedTls: TlsMaterial = {
  caCert: '-----BEGIN CERTIFICATE-----\nfixed-test-ca\n-----END CERTIFICATE-----\n',
  hosts: new Proxy({} as TlsMaterial['hosts'], {
    get: (_t, name) => ({ cert: `-----BEGIN CERTIFICATE-----\nfixed-test-cert-of-${String(name)}\n-----END CERTIFICATE-----\n`, key: new Secret(`-----BEGIN PRIVATE KEY-----\nfixed-test-key-of-${String(name)}\n-----END PRIVATE KEY-----\n`) }),
  }),
};

test('SANs: each host its name and address; PostgreSQL hosts and haproxy hosts the haproxy VIP; nfs hosts the nfs VIP; a worker only itself', async () => {
  const inv = await seedTls();
  assert.deepEqual(hostSans(inv, host(inv, 'sql1')), { dns: ['sql1', 'localhost', 'airflow-vip'], ip: ['192.168.83.148', '127.0.0.1', '192.168.83.210'] });
  assert.deepEqual(hostSans(inv, host(inv, 'airflow')), { dns: ['airflow', 'localhost', 'airflow-vip'], ip: ['192.168.83.129', '127.0.0.1', '192.168.83.210'] });
  assert.deepEqual(hostSans(inv, host(inv, 'ftp')), { dns: ['ftp', 'localhost', 'nfs-vip'], ip: ['192.168.83.132', '127.0.0.1', '192.168.83.220'] });
  assert.deepEqual(hostSans(inv, host(inv, 'worker1')), { dns: ['worker1', 'localhost'], ip: ['192.168.83.131', '127.0.0.1'] });
  assert.equal(sanExtension(hostSans(inv, host(inv, 'worker1'))), 'DNS:worker1,DNS:localhost,IP:192.168.83.131,IP:127.0.0.1');
  // Without a haproxy VIP, Airflow reaches PostgreSQL through the first haproxy host: the PostgreSQL hosts' certificates name every haproxy host.
  const noVip: Inventory = { ...inv, cluster: { ...inv.cluster, vips: inv.cluster.vips.filter((v) => v.role !== 'haproxy') } };
  assert.deepEqual(hostSans(noVip, host(noVip, 'sql2')), { dns: ['sql2', 'localhost', 'airflow', 'haproxy2'], ip: ['192.168.83.147', '127.0.0.1', '192.168.83.129', '192.168.83.154'] });
  assert.deepEqual(parseSubjectAltName('DNS:b, DNS:a, IP Address:10.0.0.2, IP Address:10.0.0.1'), { dns: ['a', 'b'], ip: ['10.0.0.1', '10.0.0.2'] });
});

test('the CA and host certificates: made once with openssl (keys 0600, folder 0700), the SANs planned, signed by the CA; a re-run keeps every file; a new VIP re-makes only the hosts that serve it', async () => {
  const dir = tempDir('ah-tls-');
  try {
    const inv = await seedTls();
    const loaded = { dir, stateDir: path.join(dir, 'site.state'), inventory: inv };
    const first = await loadOrCreateTls(loaded, process.env);
    const tlsDir = path.join(loaded.stateDir, 'tls');
    assert.equal((await stat(tlsDir)).mode & 0o777, 0o700);
    assert.equal((await stat(path.join(tlsDir, 'ca.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(path.join(tlsDir, 'hosts', 'sql1.key'))).mode & 0o777, 0o600);
    const ca = new X509Certificate(first.caCert);
    assert.equal(ca.ca, true);
    assert.match(ca.subject, /CN=airflow-ha airflow-seed CA/);
    assert.deepEqual(Object.keys(first.hosts), inv.hosts.map((h) => h.name));
    for (const h of inv.hosts) {
      const c = new X509Certificate(first.hosts[h.name]!.cert);
      assert.ok(c.checkIssued(ca) && c.verify(ca.publicKey), `${h.name} signed by the CA`);
      assert.deepEqual(parseSubjectAltName(c.subjectAltName), parseSubjectAltName(sanExtension(hostSans(inv, h)).replace(/IP:/g, 'IP Address:').replace(/,/g, ', ')));
      assert.ok(c.checkHost(h.name) && c.checkIP(h.address), h.name);
      assert.match(c.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.1.*1\.3\.6\.1\.5\.5\.7\.3\.2|1\.3\.6\.1\.5\.5\.7\.3\.2.*1\.3\.6\.1\.5\.5\.7\.3\.1/, `${h.name}: serverAuth and clientAuth`);
      assert.equal(c.ca, false);
      assert.match(first.hosts[h.name]!.key.reveal(), /^-----BEGIN PRIVATE KEY-----/);
      assert.equal(String(first.hosts[h.name]!.key), '***', 'a key prints as ***');
    }
    assert.ok(new X509Certificate(first.hosts['sql1']!.cert).checkIP('192.168.83.210'), 'the PostgreSQL host names the VIP HAProxy passes through');
    // A re-run: the same bytes for every file.
    const again = await loadOrCreateTls(loaded, process.env);
    assert.equal(again.caCert, first.caCert);
    for (const h of inv.hosts) {
      assert.equal(again.hosts[h.name]!.cert, first.hosts[h.name]!.cert, h.name);
      assert.equal(again.hosts[h.name]!.key.reveal(), first.hosts[h.name]!.key.reveal(), h.name);
    }
    // A second haproxy VIP: the PostgreSQL and haproxy hosts get new certificates naming it; the others keep theirs.
    const moreVips: Inventory = { ...inv, cluster: { ...inv.cluster, vips: [...inv.cluster.vips, { name: 'db-vip2', address: '192.168.83.211', role: 'haproxy', routerId: 53 }] } };
    const third = await loadOrCreateTls({ ...loaded, inventory: moreVips }, process.env);
    assert.equal(third.caCert, first.caCert, 'the CA stays');
    for (const name of ['sql1', 'airflow', 'haproxy2']) {
      assert.notEqual(third.hosts[name]!.cert, first.hosts[name]!.cert, name);
      assert.ok(new X509Certificate(third.hosts[name]!.cert).checkIP('192.168.83.211'), name);
    }
    for (const name of ['worker1', 'mq1', 'ftp']) assert.equal(third.hosts[name]!.cert, first.hosts[name]!.cert, name);
    // certs rotate: the hosts named get a new key and a new certificate (new serial) from the same CA; the others keep theirs.
    const rotated = await loadOrCreateTls({ ...loaded, inventory: moreVips }, process.env, { renew: new Set(['sql1', 'worker1']) });
    assert.equal(rotated.caCert, first.caCert, 'the CA stays');
    for (const name of ['sql1', 'worker1']) {
      const c = new X509Certificate(rotated.hosts[name]!.cert);
      assert.notEqual(c.serialNumber, new X509Certificate(third.hosts[name]!.cert).serialNumber, name);
      assert.notEqual(rotated.hosts[name]!.key.reveal(), third.hosts[name]!.key.reveal(), `${name}: a new key`);
      assert.ok(c.checkIssued(ca) && c.verify(ca.publicKey) && c.checkPrivateKey(createPrivateKey(rotated.hosts[name]!.key.reveal())), name);
      assert.equal(await readFile(path.join(tlsDir, 'hosts', `${name}.crt`), 'utf8'), rotated.hosts[name]!.cert, `${name}: the state folder holds the new one`);
      assert.equal((await stat(path.join(tlsDir, 'hosts', `${name}.key`))).mode & 0o777, 0o600);
    }
    for (const name of ['airflow', 'mq1', 'ftp']) assert.equal(rotated.hosts[name]!.cert, third.hosts[name]!.cert, name);
    assert.deepEqual(rotateHosts(['a', 'b'], undefined), ['a', 'b']);
    assert.deepEqual(rotateHosts(['a', 'b'], 'b, b'), ['b']);
    assert.throws(() => rotateHosts(['a', 'b'], 'a,c'), (e: unknown) => e instanceof InputError && /no host c in the inventory \(hosts: a, b\)/.test(e.message));
    assert.throws(() => rotateHosts(['a'], ','), InputError);
    // A key others can read is refused, not fixed.
    await chmod(path.join(tlsDir, 'ca.key'), 0o644);
    await assert.rejects(loadOrCreateTls(loaded, process.env), (e: unknown) => e instanceof InputError && /ca\.key has mode 0644: it must not be readable by group or others/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the site's own CA (cluster.tls.ca) signs the hosts' certificates; a certificate that is not a CA is refused", async () => {
  const dir = tempDir('ah-tls-own-');
  try {
    await mkdir(dir, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=Site CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', path.join(dir, 'site-ca.key'), '-out', path.join(dir, 'site-ca.crt')], { stdio: 'ignore' });
    await chmod(path.join(dir, 'site-ca.key'), 0o600);
    const base = await seedTls();
    const inv: Inventory = { ...base, cluster: { ...base.cluster, tls: { ...base.cluster.tls, ca: { cert: 'site-ca.crt', key: 'site-ca.key' } } } };
    const loaded = { dir, stateDir: path.join(dir, 'site.state'), inventory: inv };
    assert.deepEqual(caFiles(loaded), { cert: path.join(dir, 'site-ca.crt'), key: path.join(dir, 'site-ca.key'), own: true });
    const m = await loadOrCreateTls(loaded, process.env);
    const ca = new X509Certificate(await readFile(path.join(dir, 'site-ca.crt'), 'utf8'));
    assert.equal(m.caCert, ca.toString());
    assert.ok(new X509Certificate(m.hosts['sql1']!.cert).checkIssued(ca));
    await assert.rejects(stat(path.join(loaded.stateDir, 'tls', 'ca.key')), 'no CA of its own is made');
    // A leaf certificate named as the CA.
    await writeFile(path.join(dir, 'leaf.crt'), m.hosts['sql1']!.cert);
    await writeFile(path.join(dir, 'leaf.key'), m.hosts['sql1']!.key.reveal(), { mode: 0o600 });
    const leaf: Inventory = { ...inv, cluster: { ...inv.cluster, tls: { ...inv.cluster.tls, ca: { cert: 'leaf.crt', key: 'leaf.key' } } } };
    await assert.rejects(loadOrCreateTls({ ...loaded, inventory: leaf }, process.env), /leaf\.crt is not a CA certificate/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('golden: with TLS on, the etcd env file, patroni config, haproxy.cfg and airflow.cfg of the seed', async () => {
  const inv = await seedTls();
  await assertGolden('tls/sql1/etc/default/etcd', renderEtcdEnv(inv, 'sql1', 'new'));
  await assertGolden('tls/sql1/etc/patroni/config.yml', renderPatroniConfig(inv, 'sql1', fixedSecrets));
  await assertGolden('tls/airflow/etc/haproxy/haproxy.cfg', haproxyConfig(inv, host(inv, 'airflow'), fixedSecrets, 'debian'));
  await assertGolden('tls/airflow.cfg', renderAirflowConfig(inv, fixedSecrets));
});

test('with TLS on: etcd on https with client-cert-auth, Patroni to etcd over TLS and its REST API on HTTPS, PostgreSQL ssl = on with hostssl lines only, Airflow verify-full', async () => {
  const inv = await seedTls();
  const env = Object.fromEntries(renderEtcdEnv(inv, 'sql2', 'existing').split('\n').filter((l) => /^ETCD_/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/^"|"$/g, '')]));
  assert.equal(env['ETCD_LISTEN_CLIENT_URLS'], 'https://192.168.83.147:2379,https://127.0.0.1:2379');
  assert.equal(env['ETCD_INITIAL_CLUSTER'], 'sql1=https://192.168.83.148:2380,sql2=https://192.168.83.147:2380,sql3=https://192.168.83.149:2380');
  assert.equal(env['ETCD_CLIENT_CERT_AUTH'], 'true');
  assert.equal(env['ETCD_PEER_CLIENT_CERT_AUTH'], 'true');
  assert.equal(env['ETCD_KEY_FILE'], '/etc/airflow-ha/tls/etcd.key');
  assert.equal(env['ETCD_TRUSTED_CA_FILE'], '/etc/airflow-ha/tls/ca.crt');
  assert.match(etcdctl(etcdEndpoints(inv), inv).toString(), /--cacert=\/etc\/airflow-ha\/tls\/ca\.crt --cert=\/etc\/airflow-ha\/tls\/host\.crt --key=\/etc\/airflow-ha\/tls\/host\.key --endpoints=https:\/\/192\.168\.83\.148:2379,/);
  const y = parse(renderPatroniConfig(inv, 'sql2', fixedSecrets)) as Record<string, any>;
  assert.deepEqual(y['etcd3'], { protocol: 'https', cacert: '/etc/airflow-ha/tls/ca.crt', cert: '/etc/airflow-ha/tls/postgres.crt', key: '/etc/airflow-ha/tls/postgres.key', hosts: ['192.168.83.148:2379', '192.168.83.147:2379', '192.168.83.149:2379'] });
  assert.equal(y['restapi'].certfile, '/etc/airflow-ha/tls/postgres.crt');
  assert.equal(y['restapi'].keyfile, '/etc/airflow-ha/tls/postgres.key');
  assert.equal(y['postgresql'].parameters.ssl, 'on');
  assert.equal(y['postgresql'].parameters.ssl_key_file, '/etc/airflow-ha/tls/postgres.key');
  assert.equal(y['postgresql'].authentication.replication.sslmode, 'verify-ca');
  const hba = patroniPgHba(inv);
  assert.ok(hba.filter((l) => !l.startsWith('local ')).every((l) => l.startsWith('hostssl ')), hba.join('\n'));
  assert.ok(hba.includes('hostssl replication replicator 192.168.83.149/32 scram-sha-256'));
  assert.deepEqual(y['postgresql'].pg_hba, hba);
  assert.equal(databaseQuery(inv), '?sslmode=verify-full&sslrootcert=/etc/airflow-ha/tls/ca.crt');
  assert.match(renderAirflowConfig(inv, fixedSecrets), /^sql_alchemy_conn = postgresql\+psycopg2:\/\/airflow:fixed-airflowDb-value@192\.168\.83\.210:5000\/airflow\?sslmode=verify-full&sslrootcert=\/etc\/airflow-ha\/tls\/ca\.crt$/m);
  const cfg = haproxyConfig(inv, host(inv, 'airflow'), fixedSecrets, 'debian');
  assert.match(cfg, /server sql1 192\.168\.83\.148:5432 maxconn \d+ check port 8008 check-ssl verify required ca-file \/etc\/airflow-ha\/tls\/ca\.crt verifyhost sql1$/m);
  // The DAG processor's etcd lock: https endpoints, the CA and the Airflow user's key copy.
  const dp = airflowServices(inv, host(inv, 'ftp')).find((x) => x.kind === 'dag-processor');
  assert.deepEqual(dp?.argv.slice(0, 6), ['/usr/bin/etcdctl', '--endpoints=https://192.168.83.148:2379,https://192.168.83.147:2379,https://192.168.83.149:2379', '--cacert=/etc/airflow-ha/tls/ca.crt', '--cert=/etc/airflow-ha/tls/airflow.crt', '--key=/etc/airflow-ha/tls/airflow.key', 'lock']);
  // TLS off: none of it.
  const plain = await seedInventory();
  assert.doesNotMatch(renderEtcdEnv(plain, 'sql2', 'existing'), /https:\/\/192|CERT/);
  assert.doesNotMatch(haproxyConfig(plain, host(plain, 'airflow'), fixedSecrets, 'debian'), /check-ssl/);
  assert.ok(patroniPgHba(plain).every((l) => !l.startsWith('hostssl')));
  assert.equal(databaseQuery(plain), '');
  assert.deepEqual(tlsHostTasks(plain, host(plain, 'sql1'), undefined), []);
});

test('haproxy -c accepts haproxy.cfg with TLS checks and the HTTPS frontends of the UI, Flower and stats (real CA and certificate files)', async (t) => {
  try {
    execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
  } catch {
    t.skip('haproxy is not installed on this machine');
    return;
  }
  const dir = tempDir('ah-tls-haproxy-');
  try {
    await mkdir(dir, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=t', '-keyout', path.join(dir, 'k'), '-out', path.join(dir, 'ca.crt')], { stdio: 'ignore' });
    // The certificate file of the HTTPS frontends: a certificate, then its key.
    await writeFile(path.join(dir, 'haproxy.pem'), (await readFile(path.join(dir, 'ca.crt'), 'utf8')) + (await readFile(path.join(dir, 'k'), 'utf8')));
    const inv = await seedTls();
    const cfg = haproxyConfig(inv, host(inv, 'airflow'), fixedSecrets, 'debian')
      .replaceAll('/etc/airflow-ha/tls/ca.crt', path.join(dir, 'ca.crt'))
      .replaceAll('/etc/airflow-ha/tls/haproxy.pem', path.join(dir, 'haproxy.pem'))
      .replace(/stats socket \S+/, `stats socket ${path.join(dir, 'admin.sock')}`);
    assert.match(cfg, /bind 192\.168\.83\.\d+:443 ssl crt /, 'the UI over HTTPS');
    assert.match(cfg, /redirect prefix https:/, 'the UI\'s plain port redirects');
    assert.match(cfg, /:8080 check ssl verify required ca-file /, 'the UI servers verified');
    assert.match(cfg, /bind 192\.168\.83\.\d+:5556 ssl crt /, 'Flower over HTTPS');
    assert.match(cfg, /bind 192\.168\.83\.\d+:7000 ssl crt /, 'the stats page over HTTPS');
    assert.match(cfg, /^ {4}bind 127\.0\.0\.1:7000$/m, 'the stats page in plain HTTP on loopback only');
    await writeFile(path.join(dir, 'haproxy.cfg'), cfg);
    execFileSync('haproxy', ['-c', '-q', '-f', path.join(dir, 'haproxy.cfg')], { stdio: 'pipe' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('render with TLS on: every host gets the CA, its certificate and root key; etcd members and PostgreSQL hosts their service key copies, keys 0600', async () => {
  const inv = await seedTls();
  const files = renderFiles(etcdPatroni, inv, fixedSecrets, 'debian', { ...fixedOperator, tls: fixedTls });
  const of = (h: string) => files.filter((f) => f.host === h && f.path.startsWith('/etc/airflow-ha/tls/'));
  assert.deepEqual(of('sql1').map((f) => f.path).sort(), ['/etc/airflow-ha/tls/ca.crt', '/etc/airflow-ha/tls/etcd.crt', '/etc/airflow-ha/tls/etcd.key', '/etc/airflow-ha/tls/host.crt', '/etc/airflow-ha/tls/host.key', '/etc/airflow-ha/tls/postgres.crt', '/etc/airflow-ha/tls/postgres.key']);
  assert.deepEqual(of('worker1').map((f) => f.path).sort(), ['/etc/airflow-ha/tls/ca.crt', '/etc/airflow-ha/tls/host.crt', '/etc/airflow-ha/tls/host.key']);
  const key = of('sql1').find((f) => f.path.endsWith('postgres.key'));
  assert.equal(key?.mode, '0600');
  assert.match(key?.content.toString() ?? '', /fixed-test-key-of-sql1/);
  // Each service's certificate copy beside its key: the same certificate as host.crt, public.
  const cert = of('sql1').find((f) => f.path.endsWith('postgres.crt'));
  assert.equal(cert?.content.toString(), fixedTls.hosts['sql1']!.cert);
  assert.equal(cert?.mode, '0644');
  assert.throws(() => renderFiles(etcdPatroni, inv, fixedSecrets, 'debian', fixedOperator), /cluster\.tls is on but no certificate for \w+ was made on this machine/);
});

test('status: certificate end dates from openssl, degraded within 30 days, down once past, unreadable files named', async () => {
  assert.equal(parseNotAfter('notAfter=Mar  4 12:00:00 2029 GMT'), Date.UTC(2029, 2, 4, 12, 0, 0));
  assert.equal(parseNotAfter('notAfter=Dec 31 23:59:59 2030 GMT'), Date.UTC(2030, 11, 31, 23, 59, 59));
  assert.equal(parseNotAfter('Could not open file'), undefined);
  const now = Date.UTC(2026, 0, 1);
  assert.deepEqual(expiryVerdict(now + 31 * 86_400_000, now), { verdict: 'healthy', days: 31 });
  assert.deepEqual(expiryVerdict(now + 29 * 86_400_000, now), { verdict: 'degraded', days: 29 });
  assert.equal(expiryVerdict(now - 1000, now).verdict, 'down');
  const inv = await seedTls();
  const sec = now / 1000;
  const reach = (name: string) => ({ name, address: host(inv, name).address, reachable: true, ms: 1 });
  const results = new Map(
    inv.hosts.map((h) => [
      h.name,
      {
        reach: reach(h.name),
        outputs: new Map([
          [
            'tls.dates',
            {
              code: 0,
              stdout:
                h.name === 'sql1'
                  ? `now ${sec}\nhost notAfter=Jan 20 00:00:00 2026 GMT\nca notAfter=Jan  1 00:00:00 2036 GMT\n`
                  : h.name === 'mq1'
                    ? `now ${sec}\nhost Could not open file or uri for loading certificate from /etc/airflow-ha/tls/host.crt\nca notAfter=Jan  1 00:00:00 2036 GMT\n`
                    : `now ${sec}\nhost notAfter=Jan  1 00:00:00 2028 GMT\nca notAfter=Jan  1 00:00:00 2036 GMT\n`,
            },
          ],
        ]),
      },
    ]),
  );
  const lines = tlsLines(inv, results);
  assert.equal(lines.length, inv.hosts.length);
  const by = (h: string) => lines.find((l) => l.host === h);
  assert.deepEqual([by('sql1')?.verdict, by('sql1')?.reason], ['degraded', 'host certificate valid until 2026-01-20 (19 days), CA valid until 2036-01-01 (3652 days)']);
  assert.equal(by('worker1')?.verdict, 'healthy');
  assert.equal(by('mq1')?.verdict, 'degraded');
  assert.match(by('mq1')?.reason ?? '', /cannot read the end date of \/etc\/airflow-ha\/tls\/host\.crt/);
  assert.deepEqual(parseCertDates('now 5\nhost notAfter=Jan  1 00:00:00 2028 GMT\n'), { nowMs: 5000, hostCertEndMs: Date.UTC(2028, 0, 1) });
  assert.deepEqual(tlsLines(await seedInventory(), results), [], 'no lines with TLS off');
});

test("etcd's member-list fact over TLS: root's client certificate; a failed handshake is an answer that cannot be read, never \"down\", so no second cluster is started", async () => {
  const inv = await seedTls();
  const fact = etcdMemberListFact(inv, host(inv, 'sql2'));
  const cmd = fact.cmd.toString();
  assert.match(cmd, /python3 -c .* POST 192\.168\.83\.147 2379 \/v3\/cluster\/member\/list \/etc\/airflow-ha\/tls\/ca\.crt \/etc\/airflow-ha\/tls\/host\.crt \/etc\/airflow-ha\/tls\/host\.key '\{\}'/s);
  const refused = parseMemberListAnswer('sql2', `HTTP/1.0 ${TLS_FAILED_STATUS} TLS failed\r\n\r\n[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required\n`);
  assert.equal(refused.kind, 'unreadable');
  assert.equal(parseMemberListAnswer('sql2', '').kind, 'down', 'nothing accepted the connection');
  assert.throws(() => decideEtcdState({ hasData: false, foreignConfig: false }, [refused], undefined, 'https://192.168.83.148:2380', 'sql1'), /cannot tell whether its cluster exists/);
  const members = parseMemberListAnswer('sql2', 'HTTP/1.0 200 OK\r\n\r\n{"members":[{"peerURLs":["https://192.168.83.148:2380"]}]}');
  assert.equal(decideEtcdState({ hasData: false, foreignConfig: false }, [members], undefined, 'https://192.168.83.148:2380', 'sql1'), 'existing');
});

test('with TLS on: RabbitMQ listens on AMQPS only (client certificates of the CA), Celery gets ssl_active on the AMQPS port, the firewall opens 5671 instead of 5672', async () => {
  const plain = await seedInventory();
  const inv = await seedTls();
  const conf = renderRabbitmqConf(inv);
  for (const l of ['listeners.tcp = none', 'listeners.ssl.default = 5671', 'ssl_options.cacertfile = /etc/airflow-ha/tls/ca.crt', 'ssl_options.certfile = /etc/airflow-ha/tls/rabbitmq.crt', 'ssl_options.keyfile = /etc/airflow-ha/tls/rabbitmq.key', 'ssl_options.verify = verify_peer', 'ssl_options.fail_if_no_peer_cert = true']) assert.ok(conf.split('\n').includes(l), l);
  assert.doesNotMatch(conf, /listeners\.tcp\.default/);
  assert.match(renderRabbitmqConf(plain), /^listeners\.tcp\.default = 5672$/m);
  assert.doesNotMatch(renderRabbitmqConf(plain), /ssl_options|listeners\.ssl/);
  assert.deepEqual([brokerPort(plain), brokerPort(inv)], [5672, 5671]);

  // RabbitMQ's own key copy (0600 rabbitmq) before rabbitmq.conf; a changed key restarts the node.
  const mq1 = host(inv, 'mq1');
  const tasks = rabbitmqNodeTasks(inv, fixedSecrets, mq1, { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'mq1', container: true }, fixedTls);
  const names = tasks.map((t) => t.name);
  const key = names.findIndex((n) => n.includes('/etc/airflow-ha/tls/rabbitmq.key'));
  assert.ok(key >= 0 && key < names.findIndex((n) => n.includes('/etc/rabbitmq/rabbitmq.conf')), names.join('\n'));
  assert.match(restartIfStaleHandler(inv).ops.map((o) => JSON.stringify(o)).join(' '), /\/etc\/airflow-ha\/tls\/rabbitmq\.key/);
  assert.doesNotMatch(restartIfStaleHandler(plain).ops.map((o) => JSON.stringify(o)).join(' '), /rabbitmq\.key/);

  const cfg = renderAirflowConfig(inv, fixedSecrets);
  assert.match(cfg, /^broker_url = amqp:\/\/airflow:[^@]+@192\.168\.83\.135:5671\/airflow_host;/m);
  for (const l of ['ssl_active = True', 'ssl_key = /etc/airflow-ha/tls/airflow.key', 'ssl_cert = /etc/airflow-ha/tls/airflow.crt', 'ssl_cacert = /etc/airflow-ha/tls/ca.crt']) assert.ok(cfg.split('\n').includes(l), l);
  assert.doesNotMatch(renderAirflowConfig(plain, fixedSecrets), /ssl_active/);

  const ports = (i: Inventory) => hostPortClaims(host(i, 'mq1'), i).map((c) => c.from);
  assert.ok(ports(inv).includes(5671) && !ports(inv).includes(5672));
  assert.ok(ports(plain).includes(5672) && !ports(plain).includes(5671));
});

test('with TLS on: the management API serves the network over HTTPS (15671) and plain HTTP only on 127.0.0.1; the firewall and endpoints follow', async () => {
  const plain = await seedInventory();
  const inv = await seedTls();
  const lines = renderRabbitmqConf(inv).split('\n');
  for (const l of ['management.ssl.port = 15671', 'management.ssl.cacertfile = /etc/airflow-ha/tls/ca.crt', 'management.ssl.certfile = /etc/airflow-ha/tls/rabbitmq.crt', 'management.ssl.keyfile = /etc/airflow-ha/tls/rabbitmq.key', 'management.tcp.ip = 127.0.0.1', 'management.tcp.port = 15672']) assert.ok(lines.includes(l), l);
  const plainConf = renderRabbitmqConf(plain);
  assert.match(plainConf, /^management\.tcp\.port = 15672$/m);
  assert.doesNotMatch(plainConf, /management\.ssl|management\.tcp\.ip/);
  const ports = (i: Inventory) => hostPortClaims(host(i, 'mq1'), i).map((c) => c.from);
  assert.ok(ports(inv).includes(15671) && !ports(inv).includes(15672), String(ports(inv)));
  assert.ok(ports(plain).includes(15672) && !ports(plain).includes(15671), String(ports(plain)));
  const mgmt = (i: Inventory) => clusterEndpoints({ inventory: i, file: 'site.yaml', stateDir: '/nowhere' } as never).find((e) => e.name === 'RabbitMQ management')?.url;
  assert.deepEqual([mgmt(plain), mgmt(inv)], ['http://192.168.83.135:15672/', 'https://192.168.83.135:15671/']);
});

test('with TLS on: the celery CLI of the gates and drains uses an app with broker_use_ssl (Python that compiles); without TLS, Celery\'s default app', async () => {
  const plain = await seedInventory();
  const inv = await seedTls();
  const w = host(inv, 'worker1');
  assert.match(workerPingCheck(inv, w).toString(), /env PYTHONPATH=\/etc\/airflow-ha\/celery \/opt\/airflow\/venv\/bin\/celery --app airflow_ha_celery_cli inspect ping/);
  assert.doesNotMatch(workerPingCheck(plain, host(plain, 'worker1')).toString(), /--app|PYTHONPATH/);
  assert.equal(celeryCliModule(plain), undefined);
  const mod = celeryCliModule(inv)!;
  assert.match(mod, /"keyfile": "\/etc\/airflow-ha\/tls\/airflow\.key", "certfile": "\/etc\/airflow-ha\/tls\/airflow\.crt", "ca_certs": "\/etc\/airflow-ha\/tls\/ca\.crt", "cert_reqs": ssl\.CERT_REQUIRED/);
  execFileSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: mod });
});

test('with TLS on: the Airflow UI is HTTPS at the VIP (the plain port redirects) and HAProxy re-encrypts to the UI servers; airflow.cfg, the chain file, the gate, status and endpoints follow', async () => {
  const plain = await seedInventoryOnAirflow();
  const inv = { ...plain, cluster: { ...plain.cluster, tls: { ...plain.cluster.tls, enabled: true } } };
  // Airflow 3: the api-server serves HTTPS with the chain and the Airflow user's key; the workers reach the Execution API over HTTPS.
  const cfg = renderAirflowConfig(inv, fixedSecrets).split('\n');
  for (const l of ['ssl_cert = /etc/airflow-ha/tls/airflow-chain.crt', 'ssl_key = /etc/airflow-ha/tls/airflow.key', 'base_url = https://airflow-vip', 'execution_api_server_url = https://192.168.83.210/execution/']) assert.ok(cfg.includes(l), l);
  assert.doesNotMatch(renderAirflowConfig(plain, fixedSecrets), /^ssl_cert = \/etc\/airflow-ha\/tls\/airflow-chain|^base_url = https|^execution_api_server_url = https/m);
  assert.equal(executionApiUrl(plain), 'http://192.168.83.210/execution/');
  const moved = { ...inv, cluster: { ...inv.cluster, ports: { ...inv.cluster.ports, webserverFrontendTls: 8443 } } };
  assert.equal(executionApiUrl(moved), 'https://192.168.83.210:8443/execution/');
  // Airflow 2 (the upgrade source): the webserver's own keys.
  const two = await seedTls();
  const cfg2 = renderAirflowConfig(two, fixedSecrets).split('\n');
  for (const l of ['web_server_ssl_cert = /etc/airflow-ha/tls/airflow-chain.crt', 'web_server_ssl_key = /etc/airflow-ha/tls/airflow.key']) assert.ok(cfg2.includes(l), l);

  // The chain: this host's certificate, then the CA's, 0644, on every Airflow host.
  const rendered = renderFiles(airflowPlaybook, inv, fixedSecrets, 'debian', { ...fixedOperator, tls: fixedTls }).filter((f) => f.path === '/etc/airflow-ha/tls/airflow-chain.crt');
  const of = (h: string) => rendered.find((f) => f.host === h);
  assert.equal(of('airflow')?.content.toString(), `${fixedTls.hosts['airflow']!.cert}${fixedTls.caCert}`);
  assert.equal(of('airflow')?.mode, '0644');
  assert.ok(of('worker1'), 'every Airflow host has the chain (the Task SDK trusts its CA)');
  assert.equal(of('sql1'), undefined);

  // HAProxy: HTTPS on 443 with its certificate file, the plain port redirects, each UI server verified.
  const h = haproxyConfig(inv, host(inv, 'airflow'), fixedSecrets, 'debian');
  assert.match(h, /^ {4}bind 192\.168\.83\.210:443 ssl crt \/etc\/airflow-ha\/tls\/haproxy\.pem$/m);
  assert.match(h, /^ {4}bind 192\.168\.83\.210:80$/m);
  assert.match(h, /^ {4}http-request redirect prefix https:\/\/%\[req\.hdr\(host\),field\(1,:\)\] code 301 unless \{ ssl_fc \}$/m);
  assert.match(haproxyConfig(moved, host(inv, 'airflow'), fixedSecrets, 'debian'), /redirect prefix https:\/\/%\[req\.hdr\(host\),field\(1,:\)\]:8443 code 301/);
  assert.match(h, /^ {4}server haproxy2 192\.168\.83\.154:8080 check ssl verify required ca-file \/etc\/airflow-ha\/tls\/ca\.crt verifyhost haproxy2$/m);
  const hp = haproxyConfig(plain, host(plain, 'airflow'), fixedSecrets, 'debian');
  assert.doesNotMatch(hp, /:443|redirect|ssl verify/);
  const ports = (i: Inventory) => hostPortClaims(host(i, 'haproxy2'), i).map((c) => c.from);
  assert.ok(ports(inv).includes(443) && ports(inv).includes(80));
  assert.ok(!ports(plain).includes(443));

  // The gate, status and endpoints ask over HTTPS, verified against the cluster CA.
  assert.match(webserverHealthCheck(inv).toString(), /https:\/\/192\.168\.83\.210\/api\/v2\/monitor\/health \/etc\/airflow-ha\/tls\/ca\.crt$/);
  assert.doesNotMatch(webserverHealthCheck(plain).toString(), /ca\.crt/);
  const probes = airflowCheck.probes({ inventory: inv }, host(inv, 'airflow')).map((p) => p.cmd.toString()).join('\n');
  assert.match(probes, / GET 192\.168\.83\.129 8080 \/api\/v2\/monitor\/health \/etc\/airflow-ha\/tls\/ca\.crt/);
  assert.match(probes, / GET 192\.168\.83\.210 443 \/api\/v2\/monitor\/health \/etc\/airflow-ha\/tls\/ca\.crt/);
  const ui = (i: Inventory) => clusterEndpoints({ inventory: i, file: 'site.yaml', stateDir: '/nowhere' } as never).find((e) => e.name === 'Airflow UI')?.url;
  assert.deepEqual([ui(plain), ui(inv), ui(moved)], ['http://192.168.83.210/', 'https://192.168.83.210/', 'https://192.168.83.210:8443/']);
});

test('health gate over HTTPS: verified against the CA given, refused without it', async () => {
  const { createServer } = await import('node:https');
  const { execFile } = await import('node:child_process');
  const { HEALTH_GATE_SCRIPT } = await import('../../src/components/airflow.js');
  const dir = tempDir('ah-tls-gate-');
  await mkdir(dir, { recursive: true });
  const server = await (async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=gate', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'k'), '-out', path.join(dir, 'c')], { stdio: 'ignore' });
    const ok = { status: 'healthy' };
    return createServer({ key: await readFile(path.join(dir, 'k')), cert: await readFile(path.join(dir, 'c')) }, (_req, res) => res.end(JSON.stringify({ metadatabase: ok, scheduler: ok })));
  })();
  try {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/api/v2/monitor/health`;
    const gate = (...ca: string[]) => new Promise<{ code: number; stderr: string }>((resolve) => execFile('python3', ['-c', HEALTH_GATE_SCRIPT, url, ...ca], (err, _o, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr })));
    assert.equal((await gate(path.join(dir, 'c'))).code, 0);
    const untrusted = await gate();
    assert.notEqual(untrusted.code, 0);
    assert.match(untrusted.stderr, /CERTIFICATE_VERIFY_FAILED/);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('certs rotate: refused (exit 2, nothing made) without cluster.tls and for a host the inventory lacks; --check lists the hosts and their end dates and connects nowhere', async () => {
  const { runMain } = await import('../helpers/cli.js');
  const off = await runMain(['certs', 'rotate', '-i', 'inventory/seed-ha.yaml']);
  assert.equal(off.code, 2, off.stderr);
  assert.match(off.stderr, /seed-ha\.yaml has cluster\.tls\.enabled false: there are no certificates to rotate/);
  const dir = tempDir('ah-certs-rotate-');
  try {
    await mkdir(dir, { recursive: true });
    const seed = await readFile('inventory/seed-ha.yaml', 'utf8');
    assert.match(seed, /^cluster:\n/m);
    await writeFile(path.join(dir, 'site.yaml'), seed.replace(/^cluster:\n/m, 'cluster:\n  tls:\n    enabled: true\n'));
    const unknown = await runMain(['certs', 'rotate', '-i', path.join(dir, 'site.yaml'), '--hosts', 'sql1,nope']);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /no host nope in the inventory/);
    const check = await runMain(['certs', 'rotate', '-i', path.join(dir, 'site.yaml'), '--hosts', 'sql1', '--check']);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /check: nothing changed, nothing connected\): a new key and certificate, signed by the cluster CA, for 1 host\(s\)\n {2}sql1: no certificate yet \(ENOENT\)\n/);
    await assert.rejects(stat(path.join(dir, 'site.state', 'tls')), 'nothing made in the state folder');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
