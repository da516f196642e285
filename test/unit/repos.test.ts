/**
 * Package sources per family and mirror: the rendered repository files (golden), mirrors replacing
 * every upstream URL (keys too), nothing added for kind distro, and the pins each component asks for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FactSet, type Fact } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { etcdPins } from '../../src/components/etcd.js';
import { patroniPins, patroniTasks } from '../../src/components/patroni.js';
import { rabbitmqNodeTasks, rabbitmqPackages } from '../../src/components/rabbitmq.js';
import { debianErlangVersion, erlangAptPin, osRelease, pgdgRepoTasks, rabbitmqRepoTasks, UPSTREAM_BASES } from '../../src/components/repos.js';
import type { Inventory } from '../../src/inventory/schema.js';
import type { Task } from '../../src/tasks/task.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';

const rocky: HostFacts = { osId: 'rocky', osVersion: '9.4', family: 'rhel', hostname: 'h', container: false };
const debian: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'h', container: false };

const files = (tasks: Task[], facts: HostFacts) => tasks.flatMap((t) => t.files?.(facts) ?? []);
const text = (tasks: Task[], facts: HostFacts) => files(tasks, facts).map((f) => `== ${f.path}\n${f.content.toString()}`).join('');

/** Facts of a fresh host: every fact command printed nothing and failed. */
class Fresh extends FactSet {
  constructor() {
    super(new Map());
  }
  override get<T>(fact: Fact<T>): T {
    return fact.parse('', 1);
  }
}
const firstRun = (tasks: Task[], facts: HostFacts) =>
  tasks.flatMap((t) => t.plan(new Fresh(), facts).ops).map((o) => (o.kind === 'exec' ? o.cmd.toString() : `put ${o.path}`));

function mirrored(inv: Inventory): Inventory {
  return {
    ...inv,
    cluster: {
      ...inv.cluster,
      packages: {
        kind: 'upstream',
        proxy: 'http://proxy.example.org:3128',
        mirrors: {
          pgdg: 'https://mirror.example.org/pgdg/',
          'rabbitmq-erlang': 'https://mirror.example.org/erlang',
          'rabbitmq-server': 'https://mirror.example.org/rabbitmq',
          'rabbitmq-keys': 'https://mirror.example.org/keys',
        },
      },
    },
  };
}

test('golden: PGDG and Team RabbitMQ repository files per family, upstream and mirrored', async () => {
  const inv = await seedInventory();
  for (const [name, facts] of [['rhel', rocky], ['debian', debian]] as const) {
    await assertGolden(`repos/${name}-upstream.txt`, text([...pgdgRepoTasks(inv, facts), ...rabbitmqRepoTasks(inv, facts), ...[erlangAptPin(inv, facts.family)].filter((t) => t !== undefined)], facts));
    await assertGolden(`repos/${name}-mirrored.txt`, text([...pgdgRepoTasks(mirrored(inv), facts), ...rabbitmqRepoTasks(mirrored(inv), facts)], facts));
  }
});

test('mirrors replace every upstream URL, signing keys included; the proxy reaches dnf and curl', async () => {
  const inv = mirrored(await seedInventory());
  for (const facts of [rocky, debian]) {
    const tasks = [...pgdgRepoTasks(inv, facts), ...rabbitmqRepoTasks(inv, facts)];
    const all = `${text(tasks, facts)}\n${firstRun(tasks, facts).join('\n')}`;
    for (const bases of Object.values(UPSTREAM_BASES)) assert.ok(!all.includes(bases[facts.family]), `${facts.family}: ${bases[facts.family]} not replaced`);
    // Every URL outside comments (which cite the docs) is the mirror's.
    const live = all.split('\n').filter((l) => !l.startsWith('#')).join('\n');
    assert.doesNotMatch(live, /https?:\/\/(?!mirror\.example\.org|proxy\.example\.org)/, `${facts.family}: only mirror URLs`);
    assert.match(all, facts.family === 'rhel' ? /^proxy=http:\/\/proxy\.example\.org:3128$/m : /curl -fsSL --proxy http:\/\/proxy\.example\.org:3128 /);
  }
  // A trailing slash of the mirror is not doubled.
  assert.match(text(pgdgRepoTasks(inv, rocky), rocky), /baseurl=https:\/\/mirror\.example\.org\/pgdg\/15\/redhat\/rhel-9-\$basearch/);
});

test('first run: RHEL disables the postgresql module; Debian fetches each key once and updates apt until the source is indexed', async () => {
  const inv = await seedInventory();
  assert.deepEqual(firstRun(pgdgRepoTasks(inv, rocky), rocky), ['put /etc/yum.repos.d/airflow-ha-pgdg.repo', 'dnf -qy module disable postgresql']);
  const deb = firstRun(rabbitmqRepoTasks(inv, debian), debian);
  assert.equal(deb.filter((c) => c.includes('rabbitmq-release-signing-key.asc')).length, 2, 'one key for both sources (the second run of it is a no-op once the file exists)');
  assert.deepEqual(
    rabbitmqRepoTasks(inv, debian).map((t) => t.name).filter((n) => n.startsWith('apt index')),
    ['apt index of https://deb1.rabbitmq.com/rabbitmq-erlang/debian/bookworm bookworm', 'apt index of https://deb1.rabbitmq.com/rabbitmq-server/debian/bookworm bookworm'],
  );
});

test('kind distro adds no source: the lab keeps Debian 12 own packages', async () => {
  const inv = await seedInventory();
  const distro: Inventory = { ...inv, cluster: { ...inv.cluster, packages: { kind: 'distro' } } };
  for (const facts of [rocky, debian]) {
    assert.deepEqual(pgdgRepoTasks(distro, facts), []);
    assert.deepEqual(rabbitmqRepoTasks(distro, facts), []);
  }
  const sql1 = inv.hosts.find((h) => h.name === 'sql1')!;
  assert.ok(!patroniTasks(distro, sql1, debian, fixedSecrets).some((t) => t.name.includes('sources') || t.name.includes('apt index')));
});

test('pins: Patroni, etcd, RabbitMQ and Erlang from cluster.versions; Debian Erlang gets its epoch; unset means unpinned', async () => {
  const inv = await seedInventory();
  assert.deepEqual(patroniPins(inv, 'rhel'), { patroni: '4.0.4', 'patroni-etcd': '4.0.4' });
  assert.deepEqual(patroniPins(inv, 'debian'), { patroni: '4.0.4' });
  assert.deepEqual(etcdPins(inv, 'rhel'), { etcd: '3.5.17' });
  assert.deepEqual(etcdPins(inv, 'debian'), { 'etcd-server': '3.5.17', 'etcd-client': '3.5.17' });
  assert.deepEqual(rabbitmqPackages(inv, 'rhel'), { names: ['erlang', 'rabbitmq-server'], versions: { 'rabbitmq-server': '3.13.7', erlang: '26.2.5' } });
  assert.deepEqual(rabbitmqPackages(inv, 'debian').versions, { 'rabbitmq-server': '3.13.7', 'erlang-base': '1:26.2.5' });
  assert.equal(debianErlangVersion('1:25.2.3'), '1:25.2.3');
  const bare: Inventory = { ...inv, cluster: { ...inv.cluster, versions: { postgresql: '15', airflow: '2.9.0' } } };
  assert.deepEqual(rabbitmqPackages(bare, 'debian'), { names: ['rabbitmq-server'], versions: {} });
  assert.deepEqual([patroniPins(bare, 'rhel'), etcdPins(bare, 'debian')], [{}, {}]);
  assert.equal(erlangAptPin(bare, 'debian'), undefined);
  // Held on install: versionlock on RHEL, apt-mark hold on Debian.
  const mq1 = inv.hosts.find((h) => h.name === 'mq1')!;
  const rhelOps = firstRun(rabbitmqNodeTasks(inv, fixedSecrets, mq1, rocky), rocky);
  assert.ok(rhelOps.includes("dnf install -y -q 'erlang-26.2.5*' 'rabbitmq-server-3.13.7*'"), rhelOps.join('\n'));
  assert.ok(rhelOps.includes('dnf versionlock add erlang rabbitmq-server'));
  const debOps = firstRun(rabbitmqNodeTasks(inv, fixedSecrets, mq1, debian), debian);
  assert.ok(debOps.some((c) => c.endsWith("'erlang-base=1:26.2.5*' 'rabbitmq-server=3.13.7*'")), debOps.join('\n'));
  assert.ok(debOps.includes('apt-mark hold erlang-base rabbitmq-server'));
});

test('os release in repository paths: RHEL major, Debian code name; other Debian releases refused', () => {
  assert.equal(osRelease(rocky), '9');
  assert.equal(osRelease(debian), 'bookworm');
  assert.throws(() => osRelease({ family: 'debian', osVersion: '11' }), /Debian 11 is not supported/);
});
