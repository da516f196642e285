/**
 * Network exposure end to end: `airflow-ha bootstrap` on a 3-host lab — n1 etcd + PostgreSQL/Patroni +
 * RabbitMQ + the DAG processor, n2 HAProxy, n3 a scheduler and a Celery worker (the Airflow STAND-IN of test/standin/,
 * built into a temporary wheelhouse as in airflow.test.ts). From the worker, etcd 2379/2380,
 * Patroni 8008, PostgreSQL 5432, Erlang 4369/25672 and RabbitMQ's management 15672 are unreachable
 * (the firewall drops them) while the broker 5672 and HAProxy's leader port 5000 answer; n1 itself
 * reaches each of those ports, so each one is listening. A second bootstrap changes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { parse, stringify } from 'yaml';
import { bootLab, cli, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { buildStandin, standinAirflow } from '../helpers/airflow-lab.js';
import { tempDir } from '../helpers/local.js';

const VERSION = '2.9.0';
const HOSTS = ['n1', 'n2', 'n3'];
// The DAG processor on n1: a host that runs it takes an etcd lock, so the worker host must not be one.
const ROLES = [['etcd', 'postgresql', 'rabbitmq', 'dag_processor'], ['haproxy'], ['scheduler', 'worker']];
/** Ports the worker has no business on, all served by n1. */
const CLOSED = [2379, 2380, 8008, 5432, 4369, 25672, 15672];

let lab: TestLab;
const wheelhouse = tempDir('ah-wheelhouse-');
const addr = (name: string) => lab.loaded.inventory.hosts.find((h) => h.name === name)!.address;

before(async () => {
  await buildStandin(VERSION, wheelhouse);
  lab = await bootLab('nx', HOSTS, ROLES, () => ({
    versions: { airflow: VERSION },
    airflow: standinAirflow(wheelhouse, 1),
  }));
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { hosts: Array<{ name: string; queues?: string[] }> };
  doc.hosts.find((h) => h.name === 'n3')!.queues = ['default'];
  await writeFile(lab.inventoryFile, `# network exposure lab\n${stringify(doc)}`);
});

after(() => tearDown(lab, wheelhouse));

const inv = () => ['-i', lab.inventoryFile];

/**
 * TCP connects from `host` to each `address:port` within 3 s (bash's /dev/tcp), as one line per
 * port: `PORT open` or `PORT closed` (refused, dropped or timed out).
 */
async function probe(host: string, address: string, ports: readonly number[]): Promise<Map<number, boolean>> {
  const script = ports.map((p) => `if timeout 3 bash -c 'exec 3<>/dev/tcp/${address}/${p}' 2>/dev/null; then echo "${p} open"; else echo "${p} closed"; fi`).join('; ');
  const r = await onHost(lab.inventoryFile, host, script);
  assert.equal(r.code, 0, r.stderr);
  return new Map(r.stdout.trim().split('\n').map((l) => l.split(' ')).map(([p, s]) => [Number(p), s === 'open']));
}

/** A TCP connect from this machine (the lab's bridge address, an operator machine) within 3 s. */
function connectFromHere(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, timeout: 3000 });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('timeout', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(false));
  });
}

test('bootstrap: the worker reaches the broker and HAProxy but no etcd, Patroni, PostgreSQL, Erlang or RabbitMQ management port; a second run changes nothing', async () => {
  const first = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-5000) + first.stderr);

  const chain = await onHost(lab.inventoryFile, 'n3', 'nft list chain inet airflow_ha input');
  assert.match(chain.stdout, /policy drop;/, chain.stdout + chain.stderr);

  // n1 reaches its own ports (so each listens); the worker does not.
  const self = await probe('n1', addr('n1'), CLOSED);
  for (const p of CLOSED) assert.equal(self.get(p), true, `n1 -> n1:${p} (listening)`);
  const fromWorker = await probe('n3', addr('n1'), [...CLOSED, 5672]);
  for (const p of CLOSED) assert.equal(fromWorker.get(p), false, `worker -> n1:${p} must be dropped`);
  assert.equal(fromWorker.get(5672), true, 'worker -> n1:5672 (the broker)');
  assert.equal((await probe('n3', addr('n2'), [5000])).get(5000), true, 'worker -> n2:5000 (the database through HAProxy)');
  // HAProxy's host reaches Patroni's API and PostgreSQL (its health checks and the clients' path).
  const fromLb = await probe('n2', addr('n1'), [8008, 5432, 2379]);
  assert.deepEqual([fromLb.get(8008), fromLb.get(5432), fromLb.get(2379)], [true, true, false]);
  // This machine is the lab's operator machine: the endpoints answer it, etcd does not.
  assert.equal(await connectFromHere(addr('n2'), 5000), true, 'operator -> HAProxy 5000');
  assert.equal(await connectFromHere(addr('n1'), 15672), true, 'operator -> RabbitMQ management');
  assert.equal(await connectFromHere(addr('n1'), 2379), false, 'operator -> etcd');

  const second = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((h) => h.changed), HOSTS.map(() => 0));
});
