/**
 * The rabbitmq component offline: rabbitmq.conf and definitions.json of the seed inventory against
 * golden files (UPDATE_GOLDEN=1 rewrites them), RabbitMQ's password hash against the documented
 * vector, the deterministic salt, and the shape of the playbook's tasks.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostFacts } from '../../src/facts/host.js';
import { renderFiles } from '../../src/cli/render.js';
import {
  clusterRunningCheck,
  derivedSalt,
  guestAbsentCheck,
  rabbitPasswordHash,
  rabbitmqNodeTasks,
  renderDefinitions,
  renderRabbitmqConf,
} from '../../src/components/rabbitmq.js';
import { rabbitmq } from '../../playbooks/rabbitmq.js';
import { Secret } from '../../src/core/secret.js';
import { Inventory } from '../../src/inventory/schema.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { LocalConnection } from '../helpers/local.js';

const secrets = fixedSecrets;

const FACTS: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: true };

const seed = seedInventory;

test('password hash: the documented vector (salt 908DC60A, password test12)', () => {
  // https://www.rabbitmq.com/docs/passwords#computing-password-hash
  assert.equal(rabbitPasswordHash('test12', Buffer.from('908DC60A', 'hex')), 'kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR');
});

test('password hash: computed by hand from the algorithm, UTF-8 password', () => {
  const salt = Buffer.from([0x01, 0x02, 0xfe, 0xff]);
  const pw = 'pässwörd✓';
  const byHand = Buffer.concat([salt, createHash('sha256').update(Buffer.concat([salt, Buffer.from(pw, 'utf8')])).digest()]).toString('base64');
  assert.equal(rabbitPasswordHash(pw, salt), byHand);
  assert.equal(Buffer.from(byHand, 'base64').length, 36);
  assert.throws(() => rabbitPasswordHash(pw, Buffer.alloc(8)), /4 bytes/);
});

test('the salt is deterministic per cluster, user and password, and differs when any of them does', () => {
  const a = derivedSalt('c1', 'airflow', 'pw');
  assert.equal(a.length, 4);
  assert.deepEqual(derivedSalt('c1', 'airflow', 'pw'), a);
  assert.notDeepEqual(derivedSalt('c2', 'airflow', 'pw'), a);
  assert.notDeepEqual(derivedSalt('c1', 'admin', 'pw'), a);
  assert.notDeepEqual(derivedSalt('c1', 'airflow', 'pw2'), a);
});

test('golden: rabbitmq.conf and definitions.json of the seed inventory', async () => {
  const inv = await seed();
  const conf = renderRabbitmqConf(inv);
  await assertGolden('rabbitmq/rabbitmq.conf', conf);
  for (const [i, n] of ['mq1', 'mq2', 'mq3'].entries()) {
    assert.match(conf, new RegExp(`^cluster_formation\\.classic_config\\.nodes\\.${i + 1} = rabbit@${n}$`, 'm'));
  }
  const defs = renderDefinitions(inv, secrets);
  await assertGolden('rabbitmq/definitions.json', defs);
  const parsed = JSON.parse(defs) as {
    users: Array<{ name: string; password_hash: string; hashing_algorithm: string; tags: string }>;
    vhosts: Array<{ name: string }>;
    permissions: Array<Record<string, string>>;
    policies: unknown[];
  };
  assert.deepEqual(parsed.users.map((u) => u.name), ['admin', 'airflow']);
  assert.ok(!parsed.users.some((u) => u.name === 'guest'));
  assert.deepEqual(parsed.vhosts, [{ name: 'airflow_host' }]);
  const airflow = parsed.users.find((u) => u.name === 'airflow');
  assert.equal(airflow?.hashing_algorithm, 'rabbit_password_hashing_sha256');
  // The hash verifies against the secret with the salt stored in it.
  const raw = Buffer.from(String(airflow?.password_hash), 'base64');
  assert.equal(rabbitPasswordHash('fixed-rabbitmqAirflow-value', raw.subarray(0, 4)), airflow?.password_hash);
  assert.deepEqual(parsed.permissions.find((p) => p['user'] === 'airflow'), { user: 'airflow', vhost: 'airflow_host', configure: '.*', write: '.*', read: '.*' });
  assert.deepEqual(parsed.policies, []);
  // Rendering twice gives the same bytes (a re-run changes nothing).
  assert.equal(renderDefinitions(inv, secrets), defs);
  assert.ok(!defs.includes('fixed-rabbitmqAirflow-value') && !defs.includes('fixed-rabbitmqAdmin-value'), 'no clear-text password');
});

test('render: only rabbitmq hosts get the broker files; cookie is 0400 rabbitmq, definitions 0640', async () => {
  const inv = await seed();
  const files = renderFiles(rabbitmq, inv, secrets, 'debian');
  const hostsWith = (p: string) => files.filter((f) => f.path === p).map((f) => f.host);
  assert.deepEqual(hostsWith('/etc/rabbitmq/rabbitmq.conf'), ['mq1', 'mq2', 'mq3']);
  assert.equal(hostsWith('/etc/hosts').length, inv.hosts.length);
  const cookie = files.find((f) => f.host === 'mq2' && f.path === '/var/lib/rabbitmq/.erlang.cookie');
  assert.equal(cookie?.content.toString(), 'fixed-erlangCookie-value');
  // Owner and group, from the tasks themselves.
  const managed = rabbitmqNodeTasks(inv, secrets, inv.hosts.find((h) => h.name === 'mq2')!, FACTS).flatMap((t) => t.files?.(FACTS) ?? []);
  const meta = (p: string) => managed.filter((f) => f.path === p).map((f) => [f.mode, f.owner, f.group]);
  assert.deepEqual(meta('/var/lib/rabbitmq/.erlang.cookie'), [['0400', 'rabbitmq', 'rabbitmq']]);
  assert.deepEqual(meta('/etc/rabbitmq/definitions.json'), [['0640', 'root', 'rabbitmq']]);
  const plugins = files.find((f) => f.host === 'mq3' && f.path === '/etc/rabbitmq/enabled_plugins');
  assert.equal(plugins?.content.toString(), '[rabbitmq_management].\n');
});

test('tasks: config before the package; guest deleted from the first node only; nodes start one at a time', async () => {
  const inv = await seed();
  const facts = FACTS;
  const host = (n: string) => inv.hosts.find((h) => h.name === n)!;
  const names = rabbitmqNodeTasks(inv, secrets, host('mq1'), facts).map((t) => t.name);
  const pkg = names.findIndex((n) => n.startsWith('packages present') && n.includes('rabbitmq-server'));
  assert.ok(pkg >= 0, 'a packages task installs rabbitmq-server');
  for (const p of ['/var/lib/rabbitmq/.erlang.cookie', '/etc/rabbitmq/rabbitmq.conf', '/etc/rabbitmq/enabled_plugins', '/etc/rabbitmq/definitions.json']) {
    const i = names.findIndex((n) => n.includes(p));
    assert.ok(i >= 0 && i < pkg, `${p} is written before the package is installed`);
  }
  assert.ok(names.includes('delete the guest user'));
  assert.ok(!rabbitmqNodeTasks(inv, secrets, host('mq2'), facts).some((t) => t.name === 'delete the guest user'));
  const step = rabbitmq.steps.find((s) => s.name === 'rabbitmq nodes');
  assert.equal(step?.serial, 1);
  assert.equal(step?.gate?.on, 'first');
  // The gate asks one node's management API once (no Erlang VM booted per call), the password only
  // in a masked variable; the per-node wait asks the local management listener.
  const gate = clusterRunningCheck(inv, secrets);
  assert.match(gate.render(), /^AH_AUTH=.* bash -c .*\/dev\/tcp\/127\.0\.0\.1\/15672.* '\/api\/nodes\?columns=name,running' .*\| python3 -c .* rabbit@mq1 rabbit@mq2 rabbit@mq3$/s);
  assert.ok(!gate.render().includes(secrets.rabbitmqAdmin.reveal()), 'only the base64 header, never the password itself');
  assert.match(gate.toString(), /^AH_AUTH=\*\*\* /);
  assert.ok(!names.some((n) => n.includes('rabbitmq-diagnostics')));
  assert.ok(names.includes('wait for http://127.0.0.1:15672/'));
});

test('gate and guest check: real HTTP over /dev/tcp against a stand-in management API', async () => {
  const auth = `Basic ${Buffer.from(`admin:${secrets.rabbitmqAdmin.reveal()}`).toString('base64')}`;
  let nodes = [{ name: 'rabbit@mq1', running: true }, { name: 'rabbit@mq2', running: true }, { name: 'rabbit@mq3', running: true }];
  let guest = 404;
  const server = createServer((req, res) => {
    if (req.headers.authorization !== auth) return void res.writeHead(401).end('{"error":"not_authorised"}');
    if (req.url === '/api/nodes?columns=name,running') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(nodes));
    if (req.url === '/api/users/guest') return void res.writeHead(guest).end('{}');
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const s = await seed();
    const inv = Inventory.parse({ ...s, cluster: { ...s.cluster, ports: { ...s.cluster.ports, rabbitmqManagement: port } } });
    const conn = new LocalConnection();
    assert.equal((await conn.exec(clusterRunningCheck(inv, secrets))).code, 0, 'every node running');
    nodes = [nodes[0]!, { name: 'rabbit@mq2', running: false }];
    const missing = await conn.exec(clusterRunningCheck(inv, secrets));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not running: rabbit@mq2 rabbit@mq3/);
    const wrong = await conn.exec(clusterRunningCheck(inv, { ...secrets, rabbitmqAdmin: new Secret('wrong') }));
    assert.match(wrong.stderr, /management API: 401/);
    assert.equal((await conn.exec(guestAbsentCheck(inv, secrets))).code, 0, '404: guest absent');
    guest = 200;
    assert.notEqual((await conn.exec(guestAbsentCheck(inv, secrets))).code, 0, '200: guest present');
    guest = 503;
    // No decisive answer: rabbitmqctl decides (absent on this machine: fails, so "present").
    assert.notEqual((await conn.exec(guestAbsentCheck(inv, secrets))).code, 0);
  } finally {
    server.close();
  }
});
