/**
 * etcd + Patroni: the rendered etcd env file and patroni config of the seed inventory against
 * golden files (UPDATE_GOLDEN=1 rewrites them), the DCS timing rule, the etcd cluster-state
 * decision and the foreign data dir refusal.
 */
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decideEtcdState, etcdEnvTask, etcdHealthyCheck, etcdMembers, parseMemberListAnswer, renderEtcdEnv } from '../../src/components/etcd.js';
import { FactSet } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { patroniDcs, airflowDatabaseTasks, foreignDataDirProblem, parseAirflowDbState, renderPatroniConfig } from '../../src/components/patroni.js';
import { renderFiles } from '../../src/cli/render.js';
import { etcdPatroni } from '../../playbooks/etcd-patroni.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';

const secrets = fixedSecrets;

const seed = seedInventory;

const FACTS: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: true };

test('golden: etcd env file and patroni config of sql1..sql3 (Debian), sql1 (RHEL)', async () => {
  const inv = await seed();
  for (const h of ['sql1', 'sql2', 'sql3']) {
    await assertGolden(`etcd/${h}/etc/default/etcd`, renderEtcdEnv(inv, h, 'new'));
    await assertGolden(`patroni/${h}/etc/patroni/config.yml`, renderPatroniConfig(inv, h, secrets));
  }
  await assertGolden('patroni/rhel/sql1/etc/patroni/patroni.yml', renderPatroniConfig(inv, 'sql1', secrets, 'rhel'));
});

test('render of the playbook gives each postgresql/etcd host its files, and nothing to the others', async () => {
  const inv = await seed();
  const files = renderFiles(etcdPatroni, inv, secrets, 'debian');
  const sql1 = [...new Set(files.filter((f) => f.host === 'sql1').map((f) => f.path))].sort();
  // The seed's packages are kind upstream: PGDG's apt source comes with the Patroni node.
  assert.deepEqual(sql1, ['/etc/apt/sources.list.d/airflow-ha-pgdg.sources', '/etc/default/etcd', '/etc/hostname', '/etc/hosts', '/etc/patroni/config.yml', '/etc/postgresql-common/createcluster.conf']);
  const mq1 = files.filter((f) => f.host === 'mq1').map((f) => f.path).sort();
  assert.deepEqual(mq1, ['/etc/hostname', '/etc/hosts']);
});

test('patroni config: valid YAML, DCS timings hold loop_wait + 2*retry_timeout <= ttl, the keys the issue asks for', async () => {
  const inv = await seed();
  const { ttl, loop_wait, retry_timeout } = patroniDcs(inv);
  assert.ok(loop_wait + 2 * retry_timeout <= ttl, `${loop_wait} + 2*${retry_timeout} <= ${ttl}`);
  const y = parse(renderPatroniConfig(inv, 'sql2', secrets)) as Record<string, any>;
  assert.equal(y['scope'], 'airflow-seed');
  assert.equal(y['name'], 'sql2');
  assert.equal(y['restapi'].listen, '192.168.83.147:8008');
  assert.deepEqual(y['restapi'].authentication, { username: 'patroni', password: 'fixed-patroniRestApi-value' });
  assert.deepEqual(y['etcd3'].hosts, ['192.168.83.148:2379', '192.168.83.147:2379', '192.168.83.149:2379']);
  const dcs = y['bootstrap'].dcs;
  assert.ok(dcs.loop_wait + 2 * dcs.retry_timeout <= dcs.ttl);
  assert.equal(dcs.postgresql.use_pg_rewind, true);
  assert.equal(dcs.postgresql.use_slots, true);
  assert.equal(dcs.postgresql.parameters.password_encryption, 'scram-sha-256');
  assert.ok(y['bootstrap'].initdb.includes('data-checksums'));
  assert.deepEqual(y['bootstrap'].initdb.find((x: unknown) => typeof x === 'object' && x && 'encoding' in x), { encoding: 'UTF8' });
  assert.equal(y['postgresql'].data_dir, '/var/lib/postgresql/15/main');
  assert.equal(y['postgresql'].bin_dir, '/usr/lib/postgresql/15/bin');
  assert.equal(y['postgresql'].authentication.superuser.password, 'fixed-postgresSuperuser-value');
  const hba: string[] = y['postgresql'].pg_hba;
  for (const ip of ['192.168.83.148', '192.168.83.147', '192.168.83.149']) assert.ok(hba.includes(`host replication replicator ${ip}/32 scram-sha-256`));
  for (const ip of ['192.168.83.129', '192.168.83.154', '192.168.83.131']) assert.ok(hba.includes(`host airflow airflow ${ip}/32 scram-sha-256`), ip);
  assert.ok(!hba.some((l) => l.includes('192.168.83.135')), 'RabbitMQ hosts get no database access');
  const rhel = parse(renderPatroniConfig(inv, 'sql1', secrets, 'rhel')) as Record<string, any>;
  assert.equal(rhel['postgresql'].data_dir, '/var/lib/pgsql/15/data');
  assert.equal(rhel['postgresql'].bin_dir, '/usr/pgsql-15/bin');
});

test('etcd env: all members, token unique per cluster, both states', async () => {
  const inv = await seed();
  const env = renderEtcdEnv(inv, 'sql3', 'existing');
  assert.match(env, /^ETCD_NAME="sql3"$/m);
  assert.match(env, /^ETCD_LISTEN_CLIENT_URLS="http:\/\/192\.168\.83\.149:2379,http:\/\/127\.0\.0\.1:2379"$/m);
  assert.match(env, /^ETCD_INITIAL_CLUSTER_TOKEN="etcd-airflow-seed"$/m);
  assert.match(env, /^ETCD_INITIAL_CLUSTER="sql1=http:\/\/192\.168\.83\.148:2380,sql2=http:\/\/192\.168\.83\.147:2380,sql3=http:\/\/192\.168\.83\.149:2380"$/m);
  assert.match(env, /^ETCD_INITIAL_CLUSTER_STATE="existing"$/m);
  assert.throws(() => renderEtcdEnv(inv, 'mq1', 'new'), /not an etcd member/);
  assert.match(etcdHealthyCheck(inv).render(), /endpoint health --cluster .* -eq 3/);
});

/** A raw HTTP/1.0 answer of an etcd to `POST /v3/cluster/member/list` listing `peerUrls` (IDs as etcd prints them: uint64 strings). */
function memberListAnswer(...peerUrls: string[]): string {
  const members = peerUrls.map((u, i) => ({ ID: `1844674407370955${i}`, name: `m${i}`, peerURLs: [u], clientURLs: [u.replace('2380', '2379')] }));
  const body = JSON.stringify({ header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', raft_term: '2' }, members });
  return `HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nGrpc-Metadata-Content-Type: application/grpc\r\n\r\n${body}`;
}

test('etcd member list answers: a member list, nothing on the port, or something else', () => {
  assert.deepEqual(parseMemberListAnswer('b', memberListAnswer('http://10.0.0.11:2380', 'http://10.0.0.12:2380')), { peer: 'b', kind: 'members', peerUrls: ['http://10.0.0.11:2380', 'http://10.0.0.12:2380'] });
  assert.deepEqual(parseMemberListAnswer('b', ''), { peer: 'b', kind: 'down' }, 'connection refused or timed out: nothing printed');
  assert.deepEqual(parseMemberListAnswer('b', 'HTTP/1.0 404 Not Found\r\n\r\n404 page not found\n'), { peer: 'b', kind: 'unreadable', detail: 'HTTP 404: 404 page not found' });
  assert.equal(parseMemberListAnswer('b', 'HTTP/1.0 200 OK\r\n\r\n<html>').kind, 'unreadable');
  assert.deepEqual(parseMemberListAnswer('b', 'HTTP/1.0 200 OK\r\n\r\n{"header":{}}'), { peer: 'b', kind: 'members', peerUrls: [] });
});

test('etcd cluster state: new only on an empty data dir when no other member answers; a running member never switches; a rebuilt one joins', () => {
  const url = 'http://10.0.0.11:2380';
  const empty = { hasData: false, foreignConfig: false };
  const data = { hasData: true, foreignConfig: false };
  const down = [{ peer: 'b', kind: 'down' as const }, { peer: 'c', kind: 'down' as const }];
  const listing = (...urls: string[]) => [{ peer: 'b', kind: 'members' as const, peerUrls: urls }, { peer: 'c', kind: 'down' as const }];
  assert.equal(decideEtcdState(empty, down, undefined, url, 'a'), 'new');
  assert.equal(decideEtcdState(empty, [], undefined, url, 'a'), 'new', 'a single member');
  assert.equal(decideEtcdState(data, down, 'new', url, 'a'), 'new', 'keeps the file as it is');
  assert.equal(decideEtcdState(data, down, 'existing', url, 'a'), 'existing');
  assert.equal(decideEtcdState(data, listing(url), undefined, url, 'a'), 'existing', 'never new on a member with data');
  // A rebuilt host (empty data dir, no etcd installed): one live member that still lists it is enough.
  assert.equal(decideEtcdState(empty, listing(url, 'http://10.0.0.12:2380'), 'new', url, 'a'), 'existing');
  assert.throws(() => decideEtcdState(empty, listing('http://10.0.0.12:2380'), undefined, url, 'a'), /other members \(b\) already form a cluster without it: add it first with `etcdctl member add a --peer-urls=http:\/\/10\.0\.0\.11:2380`/);
  // Something answers on a member's client port, but no member list: never `new`.
  const odd = [{ peer: 'b', kind: 'unreadable' as const, detail: 'HTTP 404: 404 page not found' }, { peer: 'c', kind: 'down' as const }];
  assert.throws(() => decideEtcdState(empty, odd, undefined, url, 'a'), /a has an empty data dir and cannot tell whether its cluster exists: b answered HTTP 404.*refusing to start a new cluster/);
});

test('etcd env task: the other members are asked over their v3 gateway from bash, no etcdctl on this host', async () => {
  const inv = await seed();
  const task = etcdEnvTask(inv, inv.hosts.find((h) => h.name === 'sql1')!, 'debian');
  const asks = [...task.facts(FACTS)].filter((f) => f.key.startsWith('etcd-members:'));
  assert.deepEqual(asks.map((f) => f.key), ['etcd-members:http://192.168.83.147:2379/v3/cluster/member/list', 'etcd-members:http://192.168.83.149:2379/v3/cluster/member/list']);
  for (const f of asks) {
    const cmd = f.cmd.render();
    assert.match(cmd, /^timeout 3 bash -c .*\/dev\/tcp\/192\.168\.83\.14[79]\/2379.*POST %s HTTP\/1\.0/);
    assert.doesNotMatch(cmd, /etcdctl/);
  }
});

test('a non-empty data dir is refused unless it is the cluster etcd knows; never wiped', () => {
  const d = '/var/lib/postgresql/15/main';
  assert.equal(foreignDataDirProblem({ dcsReachable: true }, 'h', d, 's'), undefined, 'empty data dir');
  assert.equal(foreignDataDirProblem({ pgVersion: '15', systemId: '7', dcsReachable: true, dcsSystemId: '7' }, 'h', d, 's'), undefined);
  assert.match(foreignDataDirProblem({ pgVersion: '15', systemId: '7', dcsReachable: true }, 'h', d, 's') ?? '', /does not exist in etcd yet.*never wipes/);
  assert.match(foreignDataDirProblem({ pgVersion: '15', systemId: '7', dcsReachable: true, dcsSystemId: '8' }, 'h', d, 's') ?? '', /system identifier 8: it belongs to another cluster/);
  assert.match(foreignDataDirProblem({ pgVersion: '15', systemId: '7', dcsReachable: false }, 'h', d, 's') ?? '', /etcd cannot be asked/);
});

test('etcd env task: written before the package (no restart); a running default etcd restarts now, a running member of the cluster restarts later one at a time; a foreign config refused', async () => {
  const inv = await seed();
  const host = inv.hosts.find((h) => h.name === 'sql1')!;
  const hf = { osId: 'debian', osVersion: '12', family: 'debian' as const, hostname: 'sql1', container: false };
  const task = etcdEnvTask(inv, host, 'debian');
  const factsWith = (file: string, local: string, peers: string, active: string) => {
    const outs = new Map<string, { stdout: string; code: number }>();
    for (const f of task.facts(hf)) {
      const out = f.key.startsWith('path:') ? file : f.key.startsWith('etcd-local:') ? local : f.key.startsWith('etcd-members:') ? peers : active;
      outs.set(f.key, { stdout: out, code: 0 });
    }
    return new FactSet(outs);
  };
  // Fresh host: no file, no data, no peers, etcd not installed.
  const fresh = task.plan(factsWith('absent\n', 'empty\nours\n', '', 'not-found\ninactive\n'), hf);
  assert.equal(fresh.changed, true);
  assert.match(fresh.changes.join(), /initial cluster state new/);
  assert.deepEqual(fresh.notify, []);
  // Rebuilt host: the same, but the other members answer and still list it: it joins, never bootstraps.
  const allPeers = memberListAnswer(...etcdMembers(inv).map((m) => `http://${m.address}:2380`));
  const rebuilt = task.plan(factsWith('absent\n', 'empty\nours\n', allPeers, 'not-found\ninactive\n'), hf);
  assert.deepEqual(rebuilt.changes, ['create /etc/default/etcd (initial cluster state existing)']);
  // The package's default single-node etcd runs with the package's commented file: replaced, restarted.
  const debDefault = '## etcd(1) daemon options\n## Use environment to override, for example: ETCD_NAME=default\n';
  const present = `present|644|root|root|regular file|${'0'.repeat(64)}\n${Buffer.from(debDefault).toString('base64')}`;
  const running = task.plan(factsWith(present, 'empty\nours\n', '', 'enabled\nactive\n'), hf);
  assert.equal(running.changed, true);
  assert.deepEqual(running.notify.map((h) => h.id), ['restart:etcd']);
  // Someone else's cluster config: refused.
  assert.throws(() => task.plan(factsWith(present, 'data\nforeign\n', '', 'enabled\nactive\n'), hf), /did not write: refusing/);
  // A member of this cluster whose config changed (here: from the `new` to the `existing` variant):
  // its restart is left pending for the one-member-at-a-time step, never done by a handler here.
  const oursExisting = Buffer.from(renderEtcdEnv(inv, 'sql1', 'existing'));
  const changedOurs = `present|644|root|root|regular file|${createHash('sha256').update('old').digest('hex')}\n${Buffer.from(oursExisting.toString().replace('2380', '2390')).toString('base64')}`;
  const rolling = task.plan(factsWith(changedOurs, 'data\nours\n', allPeers, 'enabled\nactive\n'), hf);
  assert.equal(rolling.changed, true);
  assert.deepEqual(rolling.notify.map((h) => h.id), ['pending:etcd-restart']);
  // Converged member: no change.
  const ours = Buffer.from(renderEtcdEnv(inv, 'sql1', 'new'));
  const same = `present|644|root|root|regular file|${createHash('sha256').update(ours).digest('hex')}\n`;
  assert.equal(task.plan(factsWith(same, 'data\nours\n', allPeers, 'enabled\nactive\n'), hf).changed, false);
});

test('airflow database: one psql session per node guards the role, the database and the schema grant', async () => {
  const inv = await seed();
  assert.deepEqual(parseAirflowDbState('f t t\nt\n'), { primary: true, role: true, database: true, schema: true });
  assert.deepEqual(parseAirflowDbState('f t f\n'), { primary: true, role: true, database: false, schema: false });
  assert.equal(parseAirflowDbState(''), undefined, 'PostgreSQL does not answer');
  const tasks = airflowDatabaseTasks(inv, fixedSecrets);
  const facts = tasks.flatMap((t) => [...t.facts(FACTS)]);
  assert.equal(new Set(facts.map((f) => f.key)).size, 1, 'the three guards share one fact: one psql run');
  const plan = (stdout: string) => {
    const set = new FactSet(new Map([[facts[0]!.key, { stdout, code: 0 }]]));
    return tasks.map((t) => t.plan(set, FACTS).changed);
  };
  assert.deepEqual(plan('f t t\nt\n'), [false, false, false], 'primary, all there: no-op');
  assert.deepEqual(plan('t f f\n'), [false, false, false], 'a replica never creates');
  assert.deepEqual(plan(''), [false, false, false], 'PostgreSQL not answering: nothing to do here');
  assert.deepEqual(plan('f f f\n'), [true, true, true], 'a fresh primary: everything');
  assert.deepEqual(plan('f t t\nf\n'), [false, false, true], 'only the grant is missing');
});
