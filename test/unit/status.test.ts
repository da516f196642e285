/**
 * `status`, its pure parts: the per-host probe script (run by this machine's shell), the HTTP probe
 * (against a local server), each parser on sample outputs of the real tools, the judgement of whole
 * clusters' results into verdicts and exit codes, the per-role planning of the Airflow checks, and
 * the rendered table.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sh } from '../../src/core/cmd.js';
import { Secret } from '../../src/core/secret.js';
import type { FactOutput } from '../../src/facts/fact.js';
import { parseInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { collectStatus, StatusCache } from '../../src/run/status.js';
import { hostProbes, judgeAll, SLOW_REFRESH_SEC, type HostResult } from '../../src/status/checks.js';
import { buildReport, summarizeProblems, type CheckLine } from '../../src/status/model.js';
import * as p from '../../src/status/parsers.js';
import { renderReport } from '../../src/status/render.js';
import { HTTP_AUTH_ENV, httpGet, httpPost, NO_ANSWER, parseHttp, parseProbeOutput, probeScript, TIMED_OUT } from '../../src/status/script.js';
import { fixedSecrets } from '../helpers/golden.js';
import { LocalConnection, LocalTransport } from '../helpers/local.js';

// ---- the probe script -------------------------------------------------------------------------

test('probe script: probes run in parallel, each under its own timeout, outputs back in order', async () => {
  const probes = [
    { id: 'a', cmd: sh`sleep 1; echo one`, timeoutSec: 3 },
    { id: 'b', cmd: sh`sleep 1; printf 'two\\nlines'; exit 7`, timeoutSec: 3 },
    { id: 'c', cmd: sh`sleep 10; echo never`, timeoutSec: 1 },
    { id: 'd', cmd: sh`echo "@@notthenonce 0 0"; echo err >&2`, timeoutSec: 3 },
  ];
  const conn = new LocalConnection();
  const t0 = Date.now();
  const res = await conn.exec(probeScript(probes, 'abc123'));
  const ms = Date.now() - t0;
  const outs = parseProbeOutput(res.stdout, probes.length, 'abc123');
  assert.deepEqual(outs, [
    { stdout: 'one\n', code: 0 },
    { stdout: 'two\nlines', code: 7 },
    { stdout: '', code: TIMED_OUT },
    { stdout: '@@notthenonce 0 0\n', code: 0 },
  ]);
  assert.ok(ms < 2500, `parallel: ${ms} ms for probes of 1 s, 1 s, 1 s (timeout) and 0 s`);
  assert.equal(res.code, 0);
});

test('probe script: each probe is printed as it ends; cut off at the deadline, the finished ones are kept and the rest have no answer', async () => {
  const probes = [
    { id: 'slow', cmd: sh`sleep 4; echo late`, timeoutSec: 6 },
    { id: 'fast', cmd: sh`echo one`, timeoutSec: 6 },
    { id: 'quick-fail', cmd: sh`echo no; exit 3`, timeoutSec: 6 },
  ];
  const res = await new LocalConnection().exec(probeScript(probes, 'n1'), { timeoutSec: 1.5 });
  // The first probe in order has not ended: the later ones were printed anyway.
  assert.deepEqual(parseProbeOutput(res.stdout, probes.length, 'n1'), [
    { stdout: '', code: NO_ANSWER },
    { stdout: 'one\n', code: 0 },
    { stdout: 'no\n', code: 3 },
  ]);
  assert.deepEqual(parseProbeOutput('', 2, 'n1'), [{ stdout: '', code: NO_ANSWER }, { stdout: '', code: NO_ANSWER }], 'nothing printed: no probe answered');
});

test('probe script: a run killed at the deadline leaves no temp folder once its probes are done; a run that ends removes its own at once', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ah-probe-'));
  const saved = process.env['TMPDIR'];
  process.env['TMPDIR'] = tmp;
  try {
    const probes = [
      { id: 'slow', cmd: sh`sleep 2; echo late`, timeoutSec: 3 },
      { id: 'fast', cmd: sh`echo one`, timeoutSec: 3 },
    ];
    // Killed (SIGKILL, as the SSH transport's timeout does) while the slow probe runs on.
    await new LocalConnection().exec(probeScript(probes, 'n9'), { timeoutSec: 0.5 });
    assert.equal(readdirSync(tmp).length, 1, 'the cut-off run left its folder for now (the slow probe still writes there)');
    // The janitor: the longest timeout (3 s) + 2 s after the start.
    await new Promise((r) => setTimeout(r, 5500));
    assert.deepEqual(readdirSync(tmp), [], 'removed once every probe had ended');
    const res = await new LocalConnection().exec(probeScript([{ id: 'one', cmd: sh`echo one`, timeoutSec: 3 }], 'n9'));
    assert.equal(res.code, 0);
    assert.deepEqual(readdirSync(tmp), [], 'a finished run removes its folder on exit');
  } finally {
    if (saved === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = saved;
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('probe script: local probes run one after another in one job under one timeout, each isolated in a subshell; outputs, codes and order as for the others', async () => {
  const probes = [
    { id: 'l1', cmd: sh`cd /; echo "in $(pwd)"; exit 5`, timeoutSec: 2, local: true },
    { id: 'net', cmd: sh`sleep 0.3; echo far`, timeoutSec: 3 },
    { id: 'l2', cmd: sh`printf 'no newline'`, timeoutSec: 2, local: true },
    { id: 'l3', cmd: sh`echo "@@n2 0 0"; echo err >&2; true`, timeoutSec: 2, local: true },
  ];
  const script = probeScript(probes, 'n2');
  // One timeout for the three local probes, one for the other.
  assert.equal(script.toString().match(/timeout -k 1 /g)?.length, 2);
  const res = await new LocalConnection().exec(script);
  assert.deepEqual(parseProbeOutput(res.stdout, probes.length, 'n2'), [
    { stdout: 'in /\n', code: 5 },
    { stdout: 'far\n', code: 0 },
    { stdout: 'no newline', code: 0 },
    { stdout: '@@n2 0 0\n', code: 0 },
  ]);
  // The local job killed by its timeout (the largest of theirs): the probes it finished keep their
  // answer, the rest have none; a probe of its own still answers.
  const slow = [
    { id: 'a', cmd: sh`echo first`, timeoutSec: 1, local: true },
    { id: 'b', cmd: sh`sleep 5; echo never`, timeoutSec: 1, local: true },
    { id: 'c', cmd: sh`echo after`, timeoutSec: 1, local: true },
    { id: 'd', cmd: sh`echo own`, timeoutSec: 3 },
  ];
  const t0 = Date.now();
  const cut = await new LocalConnection().exec(probeScript(slow, 'n3'));
  assert.ok(Date.now() - t0 < 4000, `${Date.now() - t0} ms`);
  assert.deepEqual(parseProbeOutput(cut.stdout, slow.length, 'n3'), [
    { stdout: 'first\n', code: 0 },
    { stdout: '', code: NO_ANSWER },
    { stdout: '', code: NO_ANSWER },
    { stdout: 'own\n', code: 0 },
  ]);
  assert.throws(() => probeScript([{ id: 'x', cmd: sh`true`, timeoutSec: 1, local: true, env: { A: new Secret('s') } }], 'n'), /local probe has no env/);
});

test('httpGet: a raw HTTP/1.0 GET with the Authorization header, parsed back into status and body', async () => {
  const seen: Array<string | undefined> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      seen.push(req.headers.authorization);
      res.writeHead(req.url === '/cluster?x=1' || req.method === 'POST' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.method === 'POST' ? { method: req.method, url: req.url, body, length: req.headers['content-length'] } : { url: req.url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const conn = new LocalConnection();
    const probes = [
      { id: 'auth', cmd: httpGet(`http://127.0.0.1:${port}/cluster?x=1`, true), timeoutSec: 3, env: { [HTTP_AUTH_ENV]: new Secret('Basic c2VjcmV0') } },
      { id: 'plain', cmd: httpGet(`http://127.0.0.1:${port}/nope`), timeoutSec: 3 },
    ];
    const script = probeScript(probes, 'n0nce');
    assert.doesNotMatch(script.toString(), /c2VjcmV0/, 'the header value is masked for people');
    // The value is assigned in front of the probe's job, outside the `sh -c` word (an argv).
    assert.match(script.render(), /\{ AH_AUTH='Basic c2VjcmV0' timeout -k 1 3 sh -c '[^']*bash -c/);
    assert.equal(script.render().split('c2VjcmV0').length, 2, 'the value appears once');
    const [ok, missing] = parseProbeOutput((await conn.exec(script)).stdout, 2, 'n0nce').map((o) => parseHttp(o?.stdout ?? ''));
    assert.deepEqual(ok, { status: 200, body: '{"url":"/cluster?x=1"}' });
    assert.equal(missing?.status, 404);
    assert.deepEqual(seen.sort(), ['Basic c2VjcmV0', undefined].sort());
    // A POST with a JSON body (etcd's v3 gateway): the length counts bytes, not characters.
    const post = await conn.exec(probeScript([{ id: 'post', cmd: httpPost(`http://127.0.0.1:${port}/v3/maintenance/status`, '{"k":"é"}'), timeoutSec: 3 }], 'p0'));
    assert.deepEqual(JSON.parse(parseHttp(parseProbeOutput(post.stdout, 1, 'p0')[0]?.stdout ?? '').body), { method: 'POST', url: '/v3/maintenance/status', body: '{"k":"é"}', length: '10' });
    assert.throws(() => probeScript([{ ...probes[1]!, env: { 'A B': new Secret('x') } }], 'n'), /not a shell variable name/);
  } finally {
    server.close();
  }
  assert.deepEqual(parseHttp(''), { status: 0, body: '' });
});

// ---- parsers on sample outputs ----------------------------------------------------------------

test('parsers: systemctl, df, meminfo, loadavg, date', () => {
  assert.deepEqual(p.parseIsActive('active\ninactive\n', ['etcd', 'patroni', 'haproxy']), { etcd: 'active', patroni: 'inactive', haproxy: 'unknown' });
  assert.deepEqual(p.parseFailedUnits('chrony.service loaded failed failed chrony, an NTP client/server\nfoo.mount loaded failed failed /foo\n'), ['chrony.service', 'foo.mount']);
  assert.deepEqual(p.parseDf('/ /dev/vda 263174212 24000000 226000000 10% /\n/var/lib/etcd overlay 1000 950 50 95% /\n'), [
    { path: '/', mount: '/', usedPct: 10, availKiB: 226000000 },
    { path: '/var/lib/etcd', mount: '/', usedPct: 95, availKiB: 50 },
  ]);
  assert.deepEqual(p.parseMeminfo('MemTotal:        8000000 kB\nMemFree:  100 kB\nMemAvailable:     400000 kB\n'), { totalKiB: 8000000, availableKiB: 400000 });
  assert.deepEqual(p.parseLoad('0.52 0.58 0.59 1/467 12345\n2\n'), { load1: 0.52, load5: 0.58, cpus: 2, container: false });
  assert.deepEqual(p.parseLoad('9.52 9.58 9.59 1/467 12345\n2\nsystemd-nspawn\n'), { load1: 9.52, load5: 9.58, cpus: 2, container: true });
  assert.equal(p.parseLoad('garbage'), undefined);
});

test('parsers: etcd v3 gateway status/member list keep uint64 ids exact; GET /health', () => {
  // etcd 3.4.23 `POST /v3/maintenance/status` and `POST /v3/cluster/member/list` (ids above 2^53, as strings).
  const status = '{"header":{"cluster_id":"13739466468852821241","member_id":"14838212808054067213","revision":"143","raft_term":"2"},"version":"3.4.23","dbSize":"65536","leader":"6691454474244790334","raftIndex":"156","raftTerm":"2","raftAppliedIndex":"156","dbSizeInUse":"65536"}';
  assert.deepEqual(p.parseEtcdStatus(status), { memberId: '14838212808054067213', leader: '6691454474244790334', raftTerm: 2, version: '3.4.23' });
  const members = '{"header":{"cluster_id":"13739466468852821241","member_id":"14838212808054067213","raft_term":"2"},"members":[{"ID":"6326158232382260830","name":"h3","peerURLs":["http://10.1.1.13:2380"],"clientURLs":["http://10.1.1.13:2379"]},{"ID":"14838212808054067213","name":"h1","peerURLs":["http://10.1.1.11:2380"]}]}';
  assert.deepEqual([...p.parseEtcdMembers(members)], [['6326158232382260830', 'h3'], ['14838212808054067213', 'h1']]);
  // Numbers (as etcdctl prints them) stay exact too.
  assert.deepEqual([...p.parseEtcdMembers('{"members":[{"ID":10501334649042878790,"name":"h2"}]}')], [['10501334649042878790', 'h2']]);
  assert.deepEqual(p.parseEtcdHealth(200, '{"health":"true"}'), { healthy: true });
  assert.deepEqual(p.parseEtcdHealth(503, '{"health":"false","reason":"RAFT NO LEADER"}'), { healthy: false, error: 'HTTP 503: RAFT NO LEADER' });
  assert.deepEqual(p.parseEtcdHealth(503, '{"health":"false"}'), { healthy: false, error: 'HTTP 503, health false' });
  assert.deepEqual(p.parseEtcdHealth(0, ''), { healthy: false, error: 'no answer on the client port' });
  assert.equal(p.parseEtcdStatus('{"error":"context deadline exceeded","code":14}'), undefined);
});

test('parsers: Patroni /cluster, HAProxy show stat, ip -br addr', () => {
  const cluster = '{"members": [{"name": "h1", "role": "leader", "state": "running", "api_url": "http://10.1.1.11:8008/patroni", "host": "10.1.1.11", "port": 5432, "timeline": 2}, {"name": "h2", "role": "replica", "state": "streaming", "api_url": "http://10.1.1.12:8008/patroni", "host": "10.1.1.12", "port": 5432, "timeline": 2, "lag": 0}, {"name": "h3", "role": "replica", "state": "running", "host": "10.1.1.13", "port": 5432, "timeline": 1, "lag": "unknown"}], "scope": "c"}';
  assert.deepEqual(p.parsePatroniCluster(cluster), [
    { name: 'h1', role: 'leader', state: 'running', timeline: 2, host: '10.1.1.11' },
    { name: 'h2', role: 'replica', state: 'streaming', timeline: 2, lag: 0, host: '10.1.1.12' },
    { name: 'h3', role: 'replica', state: 'running', timeline: 1, lag: 'unknown', host: '10.1.1.13' },
  ]);
  assert.equal(p.parsePatroniCluster('<html>'), undefined);
  const csv = [
    '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,',
    'postgres_leader,FRONTEND,,,0,1,4000,3,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,',
    'postgres_leader,h1,0,0,0,1,4000,3,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,100,0,,1,2,1,,3,,2,0,,1,L7OK,200,',
    'postgres_leader,h2,0,0,0,0,4000,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,90,90,,1,2,2,,0,,2,0,,0,L7STS,503,',
    'postgres_leader,BACKEND,0,0,0,1,4000,3,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,100,0,,1,2,0,,3,,1,0,,1,,,',
    'postgres_replica,h2,0,0,0,0,4000,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,90,0,,1,3,2,,0,,2,0,,0,L7OK,200,',
    '',
  ].join('\n');
  assert.deepEqual(p.parseHaproxyStat(csv), [
    { proxy: 'postgres_leader', server: 'h1', status: 'UP', check: 'L7OK' },
    { proxy: 'postgres_leader', server: 'h2', status: 'DOWN', check: 'L7STS' },
    { proxy: 'postgres_replica', server: 'h2', status: 'UP', check: 'L7OK' },
  ]);
  assert.deepEqual(p.parseIpBrief('lo               UNKNOWN        127.0.0.1/8 \nhost0@if12       UP             10.1.1.14/24 10.1.1.200/24 \n'), ['127.0.0.1', '10.1.1.14', '10.1.1.200']);
});

test('parsers: RabbitMQ management API nodes and queues; Celery internal queues', () => {
  const nodes = '[{"disk_free_alarm":false,"mem_alarm":false,"name":"rabbit@h1","partitions":[],"running":true},{"disk_free_alarm":true,"mem_alarm":false,"name":"rabbit@h2","partitions":["rabbit@h3"],"running":true},{"name":"rabbit@h3","running":false}]';
  assert.deepEqual(p.parseRabbitNodes(nodes), [
    { name: 'rabbit@h1', running: true, partitions: [], memAlarm: false, diskAlarm: false },
    { name: 'rabbit@h2', running: true, partitions: ['rabbit@h3'], memAlarm: false, diskAlarm: true },
    { name: 'rabbit@h3', running: false, partitions: [], memAlarm: false, diskAlarm: false },
  ]);
  const queues = '[{"consumers":2,"messages":5,"name":"default","node":"rabbit@h1","state":"running","type":"classic"},{"consumers":0,"leader":"rabbit@h2","messages":0,"name":"q","state":"running","type":"quorum"}]';
  assert.deepEqual(p.parseRabbitQueues(queues), [
    { name: 'default', messages: 5, consumers: 2, type: 'classic', state: 'running', node: 'rabbit@h1' },
    { name: 'q', messages: 0, consumers: 0, type: 'quorum', state: 'running', node: 'rabbit@h2' },
  ]);
  assert.equal(p.parseRabbitQueues('{"error":"not_authorized"}'), undefined);
  assert.ok(p.isCeleryInternalQueue('celery@w1.celery.pidbox'));
  assert.ok(p.isCeleryInternalQueue('celeryev.0f2c1d'));
  assert.ok(!p.isCeleryInternalQueue('default'));
});

test('parsers: Airflow heartbeats, /health, celery active_queues, FTP, DAG folder, ssh', () => {
  const beats = p.parseHeartbeats('primary\nSchedulerJob|s1|2.4\nSchedulerJob|s1.example.org|40.0\nTriggererJob|s2|-0.3\n');
  assert.deepEqual(beats, { node: 'primary', rows: [{ jobType: 'SchedulerJob', hostname: 's1', ageSec: 2.4 }, { jobType: 'SchedulerJob', hostname: 's1.example.org', ageSec: 40 }, { jobType: 'TriggererJob', hostname: 's2', ageSec: -0.3 }] });
  assert.deepEqual(p.parseHeartbeats('replica\n'), { node: 'replica', rows: [] });
  assert.equal(p.parseHeartbeats('ERROR:  relation "job" does not exist\nLINE 1: ...\n'), undefined, 'Airflow not migrated yet');
  assert.equal(p.parseHeartbeats('primary\nSchedulerJob|s1\n'), undefined, 'a row without its age');
  assert.equal(p.heartbeatAge(beats!.rows, 'SchedulerJob', 's1'), 2.4, 'the freshest of the short and the qualified name');
  assert.equal(p.heartbeatAge(beats!.rows, 'SchedulerJob', 's2'), undefined);
  assert.equal(p.heartbeatAge(beats!.rows, 'SchedulerJob', 's'), undefined, 'a prefix of another name is not the host');
  assert.equal(p.heartbeatAge(beats!.rows, 'TriggererJob', 's2'), -0.3);
  const health = '{"dag_processor": {"latest_dag_processor_heartbeat": null, "status": null}, "metadatabase": {"status": "healthy"}, "scheduler": {"latest_scheduler_heartbeat": "2024-05-01T10:00:00+00:00", "status": "healthy"}, "triggerer": {"latest_triggerer_heartbeat": null, "status": "unhealthy"}}';
  assert.deepEqual(p.parseAirflowHealth(health), { dag_processor: null, metadatabase: 'healthy', scheduler: 'healthy', triggerer: 'unhealthy' });
  assert.equal(p.parseAirflowHealth('<html>login</html>'), undefined);
  const consumers = '[{"queue":{"name":"default","vhost":"airflow_host"},"channel_details":{"peer_host":"10.1.1.40","connection_name":"10.1.1.40:38948 -> 10.1.1.20:5672"},"active":true},{"queue":{"name":"celery@w1.celery.pidbox"},"channel_details":{"peer_host":"10.1.1.40"}}]';
  assert.deepEqual(p.parseRabbitConsumers(consumers), [{ queue: 'default', peerHost: '10.1.1.40' }, { queue: 'celery@w1.celery.pidbox', peerHost: '10.1.1.40' }]);
  assert.equal(p.parseRabbitConsumers('{"error":"not_authorized"}'), undefined);
  assert.equal(p.firstLine('220 (vsFTPd 3.0.3)\r\n'), '220 (vsFTPd 3.0.3)');
  assert.deepEqual(p.parseDagFolder('nfs4 10.1.1.220:/srv/dags\nreadable\nrev=abc123\n'), { fstype: 'nfs4', source: '10.1.1.220:/srv/dags', readable: true, revision: 'abc123' });
  assert.deepEqual(p.parseDagFolder('ext4 /dev/vda1\n'), { fstype: 'ext4', source: '/dev/vda1', readable: false });
  assert.equal(p.parseSshProbe('', 0).outcome, 'ok');
  assert.equal(p.parseSshProbe('No ED25519 host key is known for 10.1.1.30 and you have requested strict checking.\nHost key verification failed.\n', 255).outcome, 'key-unknown');
  assert.equal(p.parseSshProbe('@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\n', 255).outcome, 'key-mismatch');
  assert.equal(p.parseSshProbe('airflow@10.1.1.30: Permission denied (publickey).\n', 255).outcome, 'auth-refused');
  assert.equal(p.parseSshProbe('ssh: connect to host 10.1.1.30 port 22: Connection timed out\n', 255).outcome, 'unreachable');
});

// ---- judgement ---------------------------------------------------------------------------------

/** The test inventory; `net` is its /24 (a loopback one where probes really run: they connect only there). */
/** A 5-host data plane plus `extraHosts`; `airflow` pins cluster.versions.airflow (default: the schema's, the newest Airflow 3). */
async function inventory(extraHosts = '', net = '10.1.1', airflow?: string): Promise<Inventory> {
  const yaml = `cluster:
  name: t
  network: 10.1.1.0/24
${airflow ? `  versions: { airflow: "${airflow}" }\n` : ''}  vips: [{ name: db-vip, address: 10.1.1.200, role: haproxy, routerId: 51 }]
hosts:
  - { name: h1, address: 10.1.1.11, roles: [etcd, postgresql, rabbitmq] }
  - { name: h2, address: 10.1.1.12, roles: [etcd, postgresql, rabbitmq] }
  - { name: h3, address: 10.1.1.13, roles: [etcd, postgresql, rabbitmq] }
  - { name: h4, address: 10.1.1.14, roles: [haproxy] }
  - { name: h5, address: 10.1.1.15, roles: [haproxy] }
${extraHosts}`;
  return parseInventory(yaml.replaceAll('10.1.1.', `${net}.`), 't.yaml').inventory;
}

const ID = { h1: '11111111111111111111', h2: '12222222222222222222', h3: '13333333333333333333' } as const;
const http = (status: number, body: string) => `HTTP/1.0 ${status} OK\r\nContent-Type: application/json\r\n\r\n${body}`;

/** Sample outputs of a healthy lab (formats as in the parser tests), with `change` applied per host. */
function healthyOutputs(host: string, leader = 'h1'): Record<string, FactOutput> {
  const o = (stdout: string, code = 0): FactOutput => ({ stdout, code });
  const base: Record<string, FactOutput> = {
    'host.failed': o(''),
    'host.df': o('/ /dev/vda 1000000 200000 800000 20% /\n'),
    'host.mem': o('MemTotal: 4000000 kB\nMemAvailable: 3000000 kB\n'),
    'host.load': o('0.10 0.20 0.30 1/100 1\n2\n'),
  };
  const pgs = ['h1', 'h2', 'h3'];
  if (pgs.includes(host)) {
    const id = ID[host as keyof typeof ID];
    base['units'] = o('active\nactive\nactive\n');
    base['etcd.health'] = o(http(200, '{"health":"true"}'));
    base['etcd.status'] = o(http(200, `{"header":{"member_id":"${id}","raft_term":"3"},"version":"3.4.23","leader":"${ID.h1}","raftTerm":"3"}`));
    base['etcd.members'] = o(http(200, `{"members":[${pgs.map((h) => `{"ID":"${ID[h as keyof typeof ID]}","name":"${h}"}`).join(',')}]}`));
    // Synchronous mode is on (3 postgresql hosts): the first replica is the synchronous standby.
    const syncStandby = pgs.find((h) => h !== leader);
    base['patroni.cluster'] = o(http(200, JSON.stringify({ members: pgs.map((h) => (h === leader ? { name: h, role: 'leader', state: 'running', timeline: 2 } : { name: h, role: h === syncStandby ? 'sync_standby' : 'replica', state: 'streaming', timeline: 2, lag: 0 })) })));
    base['rabbitmq.nodes'] = o(http(200, JSON.stringify(pgs.map((h) => ({ name: `rabbit@${h}`, running: true, partitions: [], mem_alarm: false, disk_free_alarm: false })))));
    base['rabbitmq.queues'] = o(http(200, '[]'));
    base['rabbitmq.consumers'] = o(http(200, '[]'));
    base['rabbitmq.listener'] = o('');
  } else {
    base['units'] = o('active\nactive\n');
    const rows = pgs.map((h) => `postgres_leader,${h},${h === leader ? 'UP' : 'DOWN'},L7OK`).concat(pgs.map((h) => `postgres_replica,${h},${h === leader ? 'DOWN' : 'UP'},L7OK`));
    base['haproxy.stat'] = o(http(200, `# pxname,svname,status,check_status\n${rows.join('\n')}\n`));
    base['haproxy.write'] = o('4e\n');
    base['keepalived.addr'] = o(host === 'h4' ? 'eth0 UP 10.1.1.14/24 10.1.1.200/24\n' : 'eth0 UP 10.1.1.15/24\n');
    base['keepalived.answer:db-vip'] = o('');
  }
  return base;
}

function results(inv: Inventory, edit: (host: string, out: Record<string, FactOutput>) => void = () => undefined, down: Record<string, string> = {}): Map<string, HostResult> {
  return new Map<string, HostResult>(
    inv.hosts.map((h): [string, HostResult] => {
      if (down[h.name]) return [h.name, { reach: { name: h.name, address: h.address, reachable: false, reason: down[h.name], ms: 5000 } }];
      const outs = healthyOutputs(h.name);
      edit(h.name, outs);
      return [h.name, { reach: { name: h.name, address: h.address, reachable: true, ms: 50 }, outputs: new Map(Object.entries(outs)), clock: { hostMs: 1700000000000, sentAtMs: 1700000000000, receivedAtMs: 1700000000050 } }];
    }),
  );
}

const report = (inv: Inventory, r: Map<string, HostResult>) => buildReport('t', new Date(0), 100, judgeAll({ inventory: inv, secrets: fixedSecrets }, r), [...r.values()].map((x) => x.reach));

test('judge: a healthy cluster is healthy on every line, exit 0', async () => {
  const inv = await inventory();
  const r = report(inv, results(inv));
  assert.deepEqual(r.components.map((c) => [c.name, c.verdict]), [['hosts', 'healthy'], ['etcd', 'healthy'], ['patroni', 'healthy'], ['haproxy', 'healthy'], ['keepalived', 'healthy'], ['rabbitmq', 'healthy']]);
  assert.equal(r.exitCode, 0);
  const lines = r.components.flatMap((c) => c.checks);
  assert.ok(lines.every((l) => l.verdict === 'healthy'), JSON.stringify(lines.filter((l) => l.verdict !== 'healthy')));
  assert.equal(lines.find((l) => l.check === 'leader' && l.component === 'patroni')?.host, 'h1');
  assert.equal(lines.find((l) => l.component === 'etcd' && l.check === 'leader')?.reason, 'h1, raft term 3, 3/3 healthy');
  assert.match(lines.find((l) => l.component === 'keepalived')?.reason ?? '', /^held by h4; answers on 5000$/);
});

test('judge: the Patroni leader stopped, before and after failover', async () => {
  const inv = await inventory();
  // Before: h1's Patroni is down and the others see no leader yet: not serving.
  const before = report(inv, results(inv, (h, o) => {
    if (h === 'h1') {
      o['units'] = { stdout: 'active\ninactive\nactive\n', code: 0 };
      o['patroni.cluster'] = { stdout: '', code: 1 };
    } else if (['h2', 'h3'].includes(h)) o['patroni.cluster'] = { stdout: http(200, JSON.stringify({ members: [{ name: 'h2', role: 'replica', state: 'running', timeline: 2, lag: 0 }, { name: 'h3', role: 'replica', state: 'streaming', timeline: 2, lag: 0 }] })), code: 0 };
    // HAProxy has no server to route to: the connection through the VIP closes without an answer.
    if (h === 'h4' || h === 'h5') o['haproxy.write'] = { stdout: '', code: 1 };
  }));
  assert.equal(before.exitCode, 3);
  assert.equal(before.serving, false);
  assert.match(before.summary, /^DOWN: haproxy: write path 10\.1\.1\.200:5000: no PostgreSQL answers through 10\.1\.1\.200:5000 \(from h4, h5\); .*patroni: member h1: patroni\.service inactive; not in the Patroni cluster.*patroni: leader: no leader/);
  // After: h2 leads on timeline 3; h1 still out: degraded, serving, both named.
  const after = report(inv, results(inv, (h, o) => {
    if (h === 'h1') {
      o['units'] = { stdout: 'active\ninactive\nactive\n', code: 0 };
      o['patroni.cluster'] = { stdout: '', code: 1 };
    } else if (['h2', 'h3'].includes(h)) o['patroni.cluster'] = { stdout: http(200, JSON.stringify({ members: [{ name: 'h2', role: 'leader', state: 'running', timeline: 3 }, { name: 'h3', role: 'sync_standby', state: 'streaming', timeline: 3, lag: 0 }] })), code: 0 };
    if (h === 'h4' || h === 'h5') o['haproxy.stat'] = { stdout: http(200, '# pxname,svname,status\npostgres_leader,h1,DOWN\npostgres_leader,h2,UP\npostgres_leader,h3,DOWN\npostgres_replica,h1,DOWN\npostgres_replica,h2,DOWN\npostgres_replica,h3,UP\n'), code: 0 };
  }));
  assert.equal(after.exitCode, 1);
  const patroni = after.components.find((c) => c.name === 'patroni');
  assert.deepEqual(patroni?.checks.map((l) => [l.check, l.verdict]), [['member h1', 'down'], ['member h2', 'healthy'], ['member h3', 'healthy'], ['leader', 'healthy'], ['synchronous standby', 'healthy']]);
  assert.equal(patroni?.checks.find((l) => l.check === 'synchronous standby')?.host, 'h3');
  assert.equal(patroni?.checks.find((l) => l.check === 'leader')?.host, 'h2');
  assert.equal(patroni?.verdict, 'degraded');
  const hap = after.components.find((c) => c.name === 'haproxy');
  assert.deepEqual(hap?.checks.map((l) => [l.check, l.verdict, l.reason]), [
    ['write path 10.1.1.200:5000', 'healthy', 'a PostgreSQL primary answers (from h4, h5)'],
    ['haproxy h4', 'degraded', 'postgres_replica: h1 DOWN; postgres_leader -> h2; postgres_replica 1/3 UP'],
    ['haproxy h5', 'degraded', 'postgres_replica: h1 DOWN; postgres_leader -> h2; postgres_replica 1/3 UP'],
    ['leader port 5000', 'healthy', '-> h2 on 2/2 HAProxy hosts'],
  ]);
});

test('judge: an unreachable host is named, every other component is still judged; quorum kept', async () => {
  const inv = await inventory();
  const r = report(inv, results(inv, (h, o) => {
    if (['h1', 'h2'].includes(h)) o['rabbitmq.nodes'] = { stdout: http(200, JSON.stringify(['h1', 'h2', 'h3'].map((n) => ({ name: `rabbit@${n}`, running: n !== 'h3', partitions: [] })))), code: 0 };
  }, { h3: 'connect EHOSTUNREACH' }));
  assert.equal(r.exitCode, 1);
  const all = r.components.flatMap((c) => c.checks);
  const of = (component: string, check: string) => all.find((l) => l.component === component && l.check === check);
  assert.deepEqual([of('hosts', 'h3')?.verdict, of('hosts', 'h3')?.reason], ['down', 'host unreachable: connect EHOSTUNREACH']);
  assert.equal(of('etcd', 'member h3')?.verdict, 'down');
  assert.equal(of('etcd', 'leader')?.verdict, 'healthy');
  assert.match(of('patroni', 'member h3')?.reason ?? '', /^host unreachable/);
  assert.match(of('rabbitmq', 'node rabbit@h3')?.reason ?? '', /host unreachable.*peers list it as not running/);
  assert.match(of('rabbitmq', 'cluster')?.reason ?? '', /2\/3 nodes running/);
  assert.deepEqual(r.components.map((c) => c.name), ['hosts', 'etcd', 'patroni', 'haproxy', 'keepalived', 'rabbitmq']);
});

test('judge: synchronous mode on and no synchronous standby: degraded (not down), serving, and what it costs; strict says writes wait', async () => {
  const inv = await inventory();
  const noSync = (h: string, o: Record<string, FactOutput>) => {
    if (['h1', 'h2', 'h3'].includes(h)) o['patroni.cluster'] = { stdout: http(200, JSON.stringify({ members: [{ name: 'h1', role: 'leader', state: 'running', timeline: 2 }, { name: 'h2', role: 'replica', state: 'streaming', timeline: 2, lag: 0 }, { name: 'h3', role: 'replica', state: 'streaming', timeline: 2, lag: 0 }] })), code: 0 };
  };
  const r = report(inv, results(inv, noSync));
  const sync = r.components.flatMap((c) => c.checks).find((l) => l.component === 'patroni' && l.check === 'synchronous standby');
  assert.equal(sync?.verdict, 'degraded');
  assert.match(sync?.reason ?? '', /^none: synchronous mode is on but no replica is synchronous; commits are acknowledged without a copy/);
  assert.equal(r.exitCode, 1);
  assert.equal(r.serving, true);
  const strict: Inventory = { ...inv, cluster: { ...inv.cluster, postgresql: { ...inv.cluster.postgresql, ha: { ...inv.cluster.postgresql.ha, strict: true } } } };
  const rs = report(strict, results(strict, noSync));
  assert.match(rs.components.flatMap((c) => c.checks).find((l) => l.check === 'synchronous standby')?.reason ?? '', /strict, so writes wait/);
  // Synchronous mode off: no such line at all.
  const off: Inventory = { ...inv, cluster: { ...inv.cluster, postgresql: { ...inv.cluster.postgresql, ha: { ...inv.cluster.postgresql.ha, synchronous: 'off' } } } };
  assert.ok(!report(off, results(off, noSync)).components.flatMap((c) => c.checks).some((l) => l.check === 'synchronous standby'));
  assert.equal(report(off, results(off, noSync)).exitCode, 0);
});

test('judge: probes cut off at the deadline are "no answer" on their own lines; the host is reached; unknown is never down', async () => {
  const inv = await inventory();
  const silence = (o: Record<string, FactOutput>, ids: string[]) => {
    for (const id of ids) o[id] = { stdout: '', code: NO_ANSWER, waitedSec: 6 } as FactOutput;
  };
  // h2 answered its host probes but none of its component probes.
  const one = report(inv, results(inv, (h, o) => {
    if (h === 'h2') silence(o, ['etcd.health', 'etcd.status', 'etcd.members', 'patroni.cluster', 'rabbitmq.nodes', 'rabbitmq.queues', 'rabbitmq.consumers', 'rabbitmq.listener']);
  }));
  const of = (r: typeof one, component: string, check: string) => {
    const l = r.components.flatMap((c) => c.checks).find((x) => x.component === component && x.check === check);
    return l ? `${l.verdict}: ${l.reason}` : 'missing';
  };
  assert.equal(one.hosts.find((h) => h.name === 'h2')?.reachable, true);
  assert.equal(of(one, 'hosts', 'h2'), 'degraded: 8 of 13 probes: no answer within 6 s (etcd.health, etcd.status, etcd.members, patroni.cluster, rabbitmq.nodes, rabbitmq.queues, rabbitmq.consumers, rabbitmq.listener)');
  assert.equal(of(one, 'etcd', 'member h2'), 'degraded: GET /health: no answer within 6 s');
  assert.equal(of(one, 'etcd', 'leader'), 'healthy: h1, raft term 3, 2/3 healthy');
  assert.equal(of(one, 'patroni', 'member h2'), 'healthy: sync_standby, streaming, timeline 2, lag 0 B', 'the leader\'s view still speaks for h2');
  assert.equal(of(one, 'rabbitmq', 'node rabbit@h2'), 'healthy: running');
  assert.equal(one.exitCode, 1);
  // Every data-plane probe silent everywhere (a machine too busy to answer in time): unknown, degraded, exit 1.
  const all = report(inv, results(inv, (h, o) => {
    silence(o, Object.keys(o).filter((id) => !id.startsWith('host.')));
  }));
  assert.equal(all.exitCode, 1, all.summary);
  assert.equal(all.serving, true);
  assert.match(of(all, 'haproxy', 'write path 10.1.1.200:5000'), /^degraded: unknown: none of h4, h5 answered in time/);
  assert.match(of(all, 'patroni', 'leader'), /^degraded: unknown: no Patroni REST API answered in time/);
  assert.match(of(all, 'etcd', 'quorum'), /^degraded: unknown: 0 of 3 members healthy, 2 needed, 3 did not answer in time/);
  assert.match(of(all, 'rabbitmq', 'broker'), /^degraded: unknown/);
  assert.match(of(all, 'keepalived', 'vip db-vip 10.1.1.200'), /^degraded: unknown/);
  assert.ok(all.components.flatMap((c) => c.checks).every((l) => l.verdict !== 'down'), 'nothing observed down');
});

test('judge: a clock is named only when the round trips prove it more than 1 s off; a slow round trip widens the bound, never the skew', async () => {
  const inv = await inventory();
  const at = (hostMs: number, sentAtMs: number, receivedAtMs: number) => ({ hostMs, sentAtMs, receivedAtMs });
  const withClocks = (clocks: Record<string, ReturnType<typeof at>>) => {
    const r = results(inv);
    for (const [h, c] of Object.entries(clocks)) (r.get(h) as { clock?: unknown }).clock = c;
    return report(inv, r).components.flatMap((c) => c.checks).find((l) => l.component === 'hosts' && l.check === 'clock');
  };
  // h3 read its clock 2.5 s ahead; the others within their round trips.
  const skewed = withClocks({ h1: at(1000, 1000, 1050), h2: at(1020, 1000, 1060), h3: at(3600, 1000, 1080), h4: at(1010, 1000, 1040), h5: at(1005, 1000, 1030) });
  assert.deepEqual([skewed?.verdict, skewed?.host, skewed?.reason], ['degraded', 'h3', 'h3 is at least 2520 ms off h1, h2, h4, h5 (at most 1000 ms)']);
  // h3's round trip took 3 s (a busy host): its reading is late, but nothing proves it off.
  const busy = withClocks({ h1: at(1000, 1000, 1050), h2: at(1020, 1000, 1060), h3: at(3600, 1000, 4000), h4: at(1010, 1000, 1040), h5: at(1005, 1000, 1030) });
  assert.equal(busy?.verdict, 'healthy', busy?.reason);
  assert.match(busy?.reason ?? '', /^no clock shown more than 1000 ms off \(spread 0-3000 ms, as the round trips bound it\)$/);
});

test('judge: a sustained load degrades a host; vars.statusLoadPerCpu raises the bar (containers share one load average)', async () => {
  const inv = await inventory('  - { name: x1, address: 10.1.1.40, roles: [haproxy], vars: { statusLoadPerCpu: 20 } }\n');
  const r = report(inv, results(inv, (h, o) => {
    if (h === 'h4' || h === 'x1') o['host.load'] = { stdout: '30.00 22.31 20.00 9/900 1\n2\n', code: 0 };
    if (h === 'h5') o['host.load'] = { stdout: '30.00 22.31 20.00 9/900 1\n2\nsystemd-nspawn\n', code: 0 };
  }));
  const hosts = r.components.find((c) => c.name === 'hosts')?.checks ?? [];
  assert.deepEqual(hosts.find((l) => l.check === 'h4'), { component: 'hosts', check: 'h4', verdict: 'degraded', host: 'h4', reason: 'load 22.31 (5 min) on 2 CPUs, above 2 per CPU' });
  assert.equal(hosts.find((l) => l.check === 'x1')?.verdict, 'healthy');
  assert.deepEqual([hosts.find((l) => l.check === 'h5')?.verdict, hosts.find((l) => l.check === 'h5')?.reason], ['healthy', "load 22.31/2 CPUs (the machine's: a container has none of its own), memory 75% available, disk 20% used at most"]);
  assert.match(hosts.find((l) => l.check === 'x1')?.reason ?? '', /^load 22\.31\/2 CPUs/);
});

test('judge: the VIP moved after HAProxy stopped on its holder; no holder or two holders is down', async () => {
  const inv = await inventory();
  const moved = report(inv, results(inv, (h, o) => {
    if (h === 'h4') {
      o['units'] = { stdout: 'inactive\nactive\n', code: 0 };
      o['haproxy.stat'] = { stdout: '', code: 1 };
      o['haproxy.write'] = { stdout: '', code: 1 };
      o['keepalived.addr'] = { stdout: 'eth0 UP 10.1.1.14/24\n', code: 0 };
    }
    if (h === 'h5') o['keepalived.addr'] = { stdout: 'eth0 UP 10.1.1.15/24 10.1.1.200/24\n', code: 0 };
  }));
  assert.equal(moved.exitCode, 1);
  const all = moved.components.flatMap((c) => c.checks);
  assert.deepEqual(all.filter((l) => l.component === 'haproxy').map((l) => [l.check, l.verdict]), [['write path 10.1.1.200:5000', 'healthy'], ['haproxy h4', 'down'], ['haproxy h5', 'healthy'], ['leader port 5000', 'healthy']]);
  assert.match(all.find((l) => l.check === 'haproxy h4')?.reason ?? '', /^haproxy\.service inactive; stats: exit 1/);
  assert.deepEqual(all.filter((l) => l.component === 'keepalived').map((l) => [l.verdict, l.host, l.reason]), [['healthy', 'h5', 'held by h5 (failed over); answers on 5000']]);

  const none = report(inv, results(inv, (h, o) => {
    if (h === 'h4') o['keepalived.addr'] = { stdout: 'eth0 UP 10.1.1.14/24\n', code: 0 };
    if (h === 'h4' || h === 'h5') o['keepalived.answer:db-vip'] = o['haproxy.write'] = { stdout: '', code: 1 };
  }));
  assert.equal(none.exitCode, 3);
  assert.match(none.summary, /^DOWN: haproxy: write path 10\.1\.1\.200:5000: no PostgreSQL answers .*keepalived: vip db-vip 10\.1\.1\.200: held by none of h4, h5; does not answer on port 5000/);
  // Two holders while writes still pass: a component down, the cluster serving (exit 1), both said.
  const two = report(inv, results(inv, (h, o) => {
    if (h === 'h5') o['keepalived.addr'] = { stdout: 'eth0 UP 10.1.1.15/24 10.1.1.200/24\n', code: 0 };
  }));
  assert.equal(two.exitCode, 1);
  assert.equal(two.serving, true);
  assert.equal(two.components.find((c) => c.name === 'keepalived')?.verdict, 'down');
  assert.match(two.summary, /held by 2 hosts: h4, h5 \(split brain\)/);
});

test('judge: a local probe killed by its own timeout is unknown on its own line, naming the timeout, never down or unseen', async () => {
  const inv = await inventory();
  const hang = (o: Record<string, FactOutput>, id: string) => {
    o[id] = { stdout: '', code: TIMED_OUT, timeoutSec: 3 } as FactOutput;
  };
  const bad = (r: ReturnType<typeof report>) => r.components.flatMap((c) => c.checks).filter((l) => l.verdict !== 'healthy').map((l) => `${l.component}/${l.check}: ${l.verdict}: ${l.reason}`);
  // `ip` hangs on the VIP holder: whether anyone holds the VIP is unknown, not "held by none".
  const holder = report(inv, results(inv, (h, o) => h === 'h4' && hang(o, 'keepalived.addr')));
  assert.deepEqual(bad(holder), ['keepalived/vip db-vip 10.1.1.200: degraded: unknown: held by none of the hosts that answered (h4: ip -br -4 addr: timed out after 3 s)']);
  assert.equal(holder.exitCode, 1);
  // On its peer: the holder is seen, but a second holder cannot be ruled out: not healthy.
  const peer = report(inv, results(inv, (h, o) => h === 'h5' && hang(o, 'keepalived.addr')));
  assert.deepEqual(bad(peer), ['keepalived/vip db-vip 10.1.1.200: degraded: held by h4; a second holder is unknown (h5: ip -br -4 addr: timed out after 3 s); answers on 5000']);
  assert.equal(peer.exitCode, 1);
  // The host's own reads (failed units, unit states) timed out: named on its hosts line, not taken as "none failed".
  const host = report(inv, results(inv, (h, o) => {
    if (h === 'h2') ['host.failed', 'units'].forEach((id) => hang(o, id));
  }));
  assert.match(bad(host)[0] ?? '', /^hosts\/h2: degraded: host\.failed, units: timed out after 3 s$/);
  // An etcd member whose /health timed out says so with the timeout.
  const etcd = report(inv, results(inv, (h, o) => h === 'h3' && hang(o, 'etcd.health')));
  assert.match(bad(etcd).find((l) => l.startsWith('etcd/member h3')) ?? '', /GET \/health: timed out after 3 s/);
});

test('judge: RabbitMQ queues: a queue without consumer and an inventory queue never declared are degraded; the drill\'s load queue is not', async () => {
  const inv = await inventory('  - { name: w1, address: 10.1.1.21, roles: [worker], queues: [default, card] }\n');
  const r = report(inv, results(inv, (h, o) => {
    if (h === 'h1') o['rabbitmq.queues'] = { stdout: http(200, '[{"name":"default","messages":3,"consumers":0,"type":"classic","state":"running","node":"rabbit@h1"},{"name":"celery@w1.celery.pidbox","messages":0,"consumers":1},{"name":"airflow-ha-drill","messages":900,"consumers":0,"type":"quorum","state":"running","node":"rabbit@h1"}]'), code: 0 };
  }));
  const q = r.components.find((c) => c.name === 'rabbitmq')?.checks.filter((l) => l.check.startsWith('queue'));
  assert.deepEqual(q?.map((l) => [l.check, l.verdict, l.reason]), [
    ['queue airflow-ha-drill', 'healthy', "airflow-ha drill's load queue (not an Airflow queue); 900 messages, 0 consumers, quorum on rabbit@h1"],
    ['queue card', 'degraded', 'not declared in vhost airflow_host: no worker has consumed it yet'],
    ['queue default', 'degraded', 'no consumer (no worker consumes it); 3 messages, 0 consumers, classic on rabbit@h1'],
  ]);
});

test('judge: etcd without quorum is down (the cluster still serves while the primary takes writes); raft terms differing is degraded', async () => {
  const inv = await inventory();
  const noQuorum = report(inv, results(inv, (h, o) => {
    if (h !== 'h1') o['etcd.health'] = { stdout: http(503, '{"health":"false"}'), code: 0 };
  }));
  assert.equal(noQuorum.exitCode, 1);
  assert.equal(noQuorum.components.find((c) => c.name === 'etcd')?.verdict, 'down');
  assert.match(noQuorum.summary, /etcd: quorum: 1 of 3 members healthy, 2 needed/);
  assert.match(noQuorum.summary, /etcd: member h2, member h3: unhealthy: HTTP 503, health false/);
  const terms = report(inv, results(inv, (h, o) => {
    if (h === 'h3') o['etcd.status'] = { stdout: http(200, `{"header":{"member_id":"${ID.h3}"},"version":"3.4.23","leader":"${ID.h1}","raftTerm":"4"}`), code: 0 };
  }));
  assert.equal(terms.exitCode, 1);
  assert.match(terms.summary, /raft terms differ: h1 3, h2 3, h3 4/);
});

test('Airflow, DAG, FTP and target checks are planned by role and judged from their tools\' outputs', async () => {
  const inv = await inventory(
    [
      '  - { name: s1, address: 10.1.1.31, roles: [scheduler, webserver, triggerer, dag_processor] }',
      '  - { name: w1, address: 10.1.1.32, roles: [worker], queues: [default, card] }',
      '  - { name: f1, address: 10.1.1.33, roles: [flower, ftp] }',
      '  - { name: t1, address: 10.1.1.34, roles: [target] }',
      '',
    ].join('\n'),
    '10.1.1',
    '2.9.0',
  );
  const ctx = { inventory: inv, secrets: fixedSecrets };
  const ids = (name: string) => hostProbes(ctx, inv.hosts.find((h) => h.name === name)!).map((x) => x.id);
  assert.deepEqual(ids('h4').filter((i) => !i.startsWith('host.')), ['units', 'haproxy.write', 'haproxy.stat', 'keepalived.addr', 'keepalived.answer:db-vip'], 'no Airflow probe on a data-plane host');
  // The cluster-wide management API views on the first two RabbitMQ nodes only; every node's listener.
  assert.deepEqual(ids('h1').filter((i) => i.startsWith('rabbitmq.')), ['rabbitmq.listener', 'rabbitmq.nodes', 'rabbitmq.queues', 'rabbitmq.consumers']);
  assert.deepEqual(ids('h3').filter((i) => i.startsWith('rabbitmq.')), ['rabbitmq.listener']);
  // Questions any member answers for all: on the first two hosts of the role only.
  assert.deepEqual(ids('h3').filter((i) => /^(etcd|patroni)\./.test(i)), ['etcd.health', 'etcd.status']);
  assert.deepEqual(ids('h2').filter((i) => /^(etcd|patroni)\./.test(i)), ['etcd.health', 'etcd.status', 'etcd.members', 'patroni.cluster']);
  assert.deepEqual(ids('h1').filter((i) => i.startsWith('airflow.')), ['airflow.heartbeats'], 'heartbeats are read once per PostgreSQL node, not per Airflow host');
  assert.deepEqual(ids('s1').filter((i) => !i.startsWith('host.')), ['units', 'airflow.release', 'airflow.health.direct', 'airflow.health.vip', 'dags.folder'], 'the write path is asked from the first two of the HAProxy and scheduler hosts (h4, h5)');
  assert.deepEqual(ids('w1').filter((i) => !i.startsWith('host.')), ['units', 'airflow.release', 'dags.folder', 'target.ssh:t1'], 'no Celery start on a worker: the broker lists its consumers');
  assert.deepEqual(ids('f1').filter((i) => !i.startsWith('host.')), ['units', 'airflow.release', 'airflow.flower', 'ftp.banner']);
  const probeOf = (host: string, id: string) => hostProbes(ctx, inv.hosts.find((h) => h.name === host)!).find((x) => x.id === id);
  assert.equal(
    probeOf('h1', 'airflow.heartbeats')?.cmd.toString(),
    "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -d airflow -c 'select case when pg_is_in_recovery() then '\\''replica'\\'' else '\\''primary'\\'' end' -c 'select job_type, hostname, round(extract(epoch from now() - max(latest_heartbeat))::numeric, 1) from job where state = '\\''running'\\'' and job_type in ('\\''SchedulerJob'\\'', '\\''TriggererJob'\\'', '\\''DagProcessorJob'\\'') group by job_type, hostname' 2>&1",
  );
  assert.equal(probeOf('s1', 'units')?.cmd.toString(), 'systemctl is-active airflow-scheduler.service airflow-triggerer.service airflow-dag-processor.service airflow-webserver.service');
  assert.match(probeOf('s1', 'airflow.health.vip')?.cmd.toString() ?? '', /dev\/tcp\/10\.1\.1\.200\/80 .* \/health /);
  const health = '{"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}, "triggerer": {"status": "healthy"}, "dag_processor": {"status": "unhealthy"}}';
  const r = report(inv, results(inv, (h, o) => {
    // h1 is the primary; h2, a replica, lags behind with an older view, which is not used.
    if (h === 'h1') o['airflow.heartbeats'] = { stdout: 'primary\nSchedulerJob|s1|3.2\nTriggererJob|s1|4.0\nDagProcessorJob|s1|25.0\n', code: 0 };
    if (h === 'h2') o['airflow.heartbeats'] = { stdout: 'replica\nSchedulerJob|s1|90.0\n', code: 0 };
    if (h === 's1') {
      o['airflow.release'] = { stdout: '2.9.0\nairflow-ha lab stand-in for Apache Airflow (not Airflow)\n', code: 0 };
      o['units'] = { stdout: 'active\nactive\nactive\nactive\n', code: 0 };
      o['airflow.health.direct'] = { stdout: http(200, health), code: 0 };
      o['airflow.health.vip'] = { stdout: http(200, health), code: 0 };
      o['dags.folder'] = { stdout: 'nfs4 10.1.1.220:/dags\nreadable\n', code: 0 };
    }
    if (h === 'h1') o['rabbitmq.consumers'] = { stdout: http(200, '[{"queue":{"name":"default"},"channel_details":{"peer_host":"10.1.1.32"}},{"queue":{"name":"celery@w1.celery.pidbox"},"channel_details":{"peer_host":"10.1.1.32"}},{"queue":{"name":"card"},"channel_details":{"peer_host":"10.1.1.99"}}]'), code: 0 };
    if (h === 'w1') {
      o['airflow.release'] = { stdout: '2.9.0\nProgrammatically author, schedule and monitor data pipelines\n', code: 0 };
      o['dags.folder'] = { stdout: 'nfs4 10.1.1.220:/dags\n', code: TIMED_OUT };
      o['target.ssh:t1'] = { stdout: 'Host key verification failed.\n', code: 255 };
    }
    if (h === 'f1') {
      o['airflow.flower'] = { stdout: 'HTTP/1.1 200 OK\r\n\r\nOK', code: 0 };
      o['ftp.banner'] = { stdout: '220 (vsFTPd 3.0.3)\r\n', code: 0 };
    }
  }));
  const all = r.components.flatMap((c) => c.checks);
  const v = (component: string, check: string) => {
    const l = all.find((x) => x.component === component && x.check === check);
    return l ? `${l.verdict}: ${l.reason}` : 'missing';
  };
  // The metadata each host's virtualenv holds: the stand-in is never called Airflow.
  assert.equal(v('airflow', 'release'), 'degraded: hosts differ: Airflow stand-in, not Apache Airflow (it calls itself 2.9.0) on s1; Apache Airflow 2.9.0 on w1');
  assert.deepEqual(hostProbes(ctx, inv.hosts.find((h) => h.name === 'h1')!).filter((x) => x.id === 'airflow.release'), [], 'no release probe on a host without Airflow');
  assert.match(probeOf('f1', 'airflow.release')?.cmd.toString() ?? '', /sed -n -e 's\/\^Version: \/\/p' -e 's\/\^Summary: \/\/p' \/opt\/airflow\/venv\/lib\/python3\*\/site-packages\/apache_airflow-\*\.dist-info\/METADATA/);
  assert.equal(v('airflow', 'scheduler s1'), 'healthy: heartbeat 3.2 s ago');
  assert.equal(v('airflow', 'triggerer s1'), 'healthy: heartbeat 4 s ago');
  assert.equal(v('airflow', 'dag processor s1'), 'down: last heartbeat 25 s ago (alive within 10.5 s)');
  assert.equal(v('airflow', 'dag processors'), 'degraded: no dag processor heartbeat on any of 1 hosts');
  assert.equal(v('airflow', 'webserver /health via 10.1.1.200'), 'degraded: dag_processor unhealthy');
  assert.equal(v('airflow', 'worker celery@w1'), 'degraded: does not consume card; consumes default');
  assert.equal(v('airflow', 'webserver s1'), 'healthy: GET /health answers');
  assert.equal(v('airflow', 'flower f1'), 'healthy: GET /healthcheck OK');
  assert.equal(v('dags', '/opt/airflow/dags on w1'), 'down: listing timed out (NFS server gone?)');
  assert.equal(v('ftp', 'ftp f1'), 'healthy: 220 (vsFTPd 3.0.3)');
  assert.equal(v('target', 't1 from w1'), 'down: host key verification failed');
  assert.equal(r.exitCode, 1, r.summary);
});

test('judge: Airflow heartbeats unreadable, a stale scheduler, a DAG processor standby, a silent worker', async () => {
  const inv = await inventory(
    [
      '  - { name: s1, address: 10.1.1.31, roles: [scheduler, webserver] }',
      '  - { name: s2, address: 10.1.1.32, roles: [scheduler, webserver] }',
      '  - { name: d1, address: 10.1.1.33, roles: [dag_processor] }',
      '  - { name: d2, address: 10.1.1.34, roles: [dag_processor] }',
      '  - { name: w1, address: 10.1.1.35, roles: [worker] }',
      '',
    ].join('\n'),
  );
  const lineOf = (r: ReturnType<typeof report>, check: string) => {
    const l = r.components.flatMap((c) => c.checks).find((x) => x.component === 'airflow' && x.check === check);
    return l ? `${l.verdict}: ${l.reason}` : 'missing';
  };
  // Triggerers fall back to the scheduler hosts (no host has the role): their heartbeats are read too.
  const units = (h: string, o: Record<string, FactOutput>) => {
    if (h === 's1' || h === 's2') {
      o['units'] = { stdout: h === 's2' ? 'inactive\nactive\nactive\n' : 'active\nactive\nactive\n', code: h === 's2' ? 3 : 0 };
      o['airflow.health.direct'] = o['airflow.health.vip'] = { stdout: http(200, '{"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}}'), code: 0 };
    }
    if (h === 'd1' || h === 'd2' || h === 'w1') o['units'] = { stdout: 'active\n', code: 0 };
  };
  const rows = 'SchedulerJob|s1|1.5\nSchedulerJob|s2|31.0\nTriggererJob|s1|2.0\nTriggererJob|s2|2.5\nDagProcessorJob|d2|1.0\n';
  const live = report(inv, results(inv, (h, o) => {
    units(h, o);
    if (h === 'h1') o['airflow.heartbeats'] = { stdout: `primary\n${rows}`, code: 0 };

  }));
  assert.equal(lineOf(live, 'scheduler s1'), 'healthy: heartbeat 1.5 s ago');
  assert.equal(lineOf(live, 'scheduler s2'), 'down: airflow-scheduler.service inactive; last heartbeat 31 s ago (alive within 30 s)');
  assert.equal(lineOf(live, 'schedulers'), 'missing', 'one live scheduler serves');
  assert.equal(lineOf(live, 'triggerer s2'), 'healthy: heartbeat 2.5 s ago');
  assert.equal(lineOf(live, 'dag processor d2'), 'healthy: heartbeat 1 s ago');
  assert.equal(lineOf(live, 'dag processor d1'), 'healthy: standby (waits for the etcd lock the active one holds)');
  assert.equal(lineOf(live, 'worker celery@w1'), 'down: consumes no queue on the broker (expected default)');
  assert.equal(live.exitCode, 1, live.summary);

  // The DAG processor d1 stopped (unit inactive) is no standby; the database has no job table yet.
  const unread = report(inv, results(inv, (h, o) => {
    units(h, o);
    if (h === 'd1') o['units'] = { stdout: 'failed\n', code: 3 };
    if (h === 'h1' || h === 'h2' || h === 'h3') o['airflow.heartbeats'] = { stdout: 'ERROR:  relation "job" does not exist\n', code: 1 };
    if (h === 'h1') o['rabbitmq.consumers'] = { stdout: http(200, '[{"queue":{"name":"default"},"channel_details":{"peer_host":"10.1.1.35"}}]'), code: 0 };
  }));
  assert.equal(lineOf(unread, 'scheduler s1'), 'degraded: heartbeat unknown: metadata database not readable (h1: psql: exit 1 (ERROR:  relation "job" does not exist); h2: psql: exit 1 (ERROR:  relation "job" does not exist))', 'asked on the first two PostgreSQL nodes');
  assert.match(lineOf(unread, 'schedulers'), /^degraded: heartbeats unknown: metadata database not readable/);
  assert.match(lineOf(unread, 'dag processor d1'), /^down: airflow-dag-processor.service failed; heartbeat unknown/);
  assert.equal(lineOf(unread, 'worker celery@w1'), 'healthy: consumes default');
  assert.equal(unread.exitCode, 1, 'unknown is not down: /health through the VIP still reports the scheduler healthy');

  // Units stopped while their heartbeats are still young (a kill a moment ago): each job is down by
  // its own unit at once, not 30 s later; s1's stopped triggerer is not held against its scheduler.
  const fresh = 'SchedulerJob|s1|1.5\nSchedulerJob|s2|3.0\nTriggererJob|s1|2.0\nTriggererJob|s2|2.5\nDagProcessorJob|d2|1.0\n';
  const killed = report(inv, results(inv, (h, o) => {
    units(h, o);
    if (h === 's1') o['units'] = { stdout: 'active\ninactive\nactive\n', code: 3 };
    if (h === 'h1') o['airflow.heartbeats'] = { stdout: `primary\n${fresh}`, code: 0 };
  }));
  assert.equal(lineOf(killed, 'scheduler s2'), 'down: airflow-scheduler.service inactive; last heartbeat 3 s ago, from before it stopped');
  assert.equal(lineOf(killed, 'scheduler s1'), 'healthy: heartbeat 1.5 s ago');
  assert.equal(lineOf(killed, 'triggerer s1'), 'down: airflow-triggerer.service inactive; last heartbeat 2 s ago, from before it stopped');
  assert.equal(lineOf(killed, 'triggerer s2'), 'healthy: heartbeat 2.5 s ago');

  // A replica's answer is used when the primary is unreachable.
  const replica = report(inv, results(inv, (h, o) => {
    units(h, o);
    if (h === 'h2') o['airflow.heartbeats'] = { stdout: `replica\n${rows}`, code: 0 };
  }, { h1: 'connect ETIMEDOUT' }));
  assert.equal(lineOf(replica, 'scheduler s1'), 'healthy: heartbeat 1.5 s ago');
});

// ---- runner and rendering ----------------------------------------------------------------------

test('collectStatus: one exec per reachable host, an unreachable host reported with its reason', async () => {
  // The probes run on this machine: the inventory's addresses are loopback ones, where nothing listens.
  const inv = await inventory('', '127.0.9');
  const transport = new LocalTransport(new Set(['h5']));
  const r = await collectStatus({ inventory: inv }, transport, { connectTimeoutSec: 2 });
  for (const h of ['h1', 'h2', 'h3', 'h4']) assert.equal(transport.conns.get(h)?.calls.length, 1, `${h}: one round trip`);
  assert.deepEqual(r.hosts.find((h) => h.name === 'h5'), { name: 'h5', address: '127.0.9.15', reachable: false, reason: 'connect ECONNREFUSED (test)', ms: r.hosts.find((h) => h.name === 'h5')?.ms });
  assert.equal(r.components.find((c) => c.name === 'hosts')?.checks.find((l) => l.check === 'h5')?.reason, 'host unreachable: connect ECONNREFUSED (test)');
  // This machine is not a cluster member: etcd/Patroni/HAProxy refuse, which is reported, not thrown;
  // the write path and the broker were observed refusing: not serving.
  assert.equal(r.exitCode, 3);
  assert.match(r.summary, /^DOWN: haproxy: write path 127\.0\.9\.200:5000: no PostgreSQL answers .*; rabbitmq: broker: no node accepts connections on 5672/);
  assert.ok(r.components.find((c) => c.name === 'rabbitmq')?.checks.some((l) => l.check === 'management API'), 'without secrets RabbitMQ cannot be asked');
});

test('status --watch cache: a slow-changing check (disk use) is asked again only after its refresh time; an unreachable host forgets it', async () => {
  const inv = await inventory('', '127.0.9');
  const transport = new LocalTransport();
  const cache = new StatusCache();
  let clock = 1_000_000;
  const now = () => clock;
  const asked = (h: string) => transport.conns.get(h)?.calls.map((c) => c.text.includes('df -Pk')) ?? [];
  await collectStatus({ inventory: inv }, transport, { connectTimeoutSec: 2, now, cache });
  clock += (SLOW_REFRESH_SEC - 1) * 1000;
  await collectStatus({ inventory: inv }, transport, { connectTimeoutSec: 2, now, cache });
  clock += 2000;
  await collectStatus({ inventory: inv }, transport, { connectTimeoutSec: 2, now, cache });
  assert.deepEqual(asked('h1'), [true, false, true], 'asked, kept, asked again once older than the refresh time');
  // Without a cache (a plain `status`) every check is asked every time.
  await collectStatus({ inventory: inv }, transport, { connectTimeoutSec: 2, now });
  assert.deepEqual(asked('h1').at(-1), true);
  cache.forget('h1');
  await collectStatus({ inventory: inv }, transport, { connectTimeoutSec: 2, now, cache });
  assert.deepEqual(asked('h1').at(-1), true, 'forgotten: asked again');
});

test('StatusCache: a kept answer comes back with its age until its refresh time; a failed answer and a probe without refreshSec are never kept', () => {
  const cache = new StatusCache();
  const slowProbe = { id: 'host.df', cmd: sh`df`, timeoutSec: 3, refreshSec: 30 };
  const failing = { id: 'target.ssh:t1', cmd: sh`ssh`, timeoutSec: 6, refreshSec: 30 };
  const live = { id: 'host.mem', cmd: sh`cat /proc/meminfo`, timeoutSec: 3 };
  const probes = [slowProbe, failing, live];
  cache.keep('h1', probes, new Map([['host.df', { stdout: '/ 1 2 3 4 50% /\n', code: 0 }], ['target.ssh:t1', { stdout: 'Connection refused', code: 255 }], ['host.mem', { stdout: 'MemTotal: 1 kB\n', code: 0 }]]), 1000);
  const kept = cache.fresh('h1', probes, 11_000);
  assert.deepEqual([...kept.keys()], ['host.df']);
  assert.deepEqual(kept.get('host.df'), { stdout: '/ 1 2 3 4 50% /\n', code: 0, ageSec: 10 });
  assert.equal(cache.fresh('h1', probes, 31_000).size, 0, 'older than 30 s: asked again');
  assert.equal(cache.fresh('h2', probes, 11_000).size, 0);
});

test('render: the verdict first; a healthy component on one line, a component with a problem with every check; --all shows all', async () => {
  const inv = await inventory();
  const r = report(inv, results(inv, () => undefined, { h3: 'connect EHOSTUNREACH' }));
  const text = renderReport(r);
  const lines = text.split('\n');
  assert.match(lines[0] ?? '', /^DEGRADED t: serving — hosts: h3: host unreachable: connect EHOSTUNREACH; /);
  assert.equal(lines[1], 'HOSTS       degraded  1 of 6 checks not healthy');
  assert.match(text, /\n {2}down {5}h3 {2,}host unreachable: connect EHOSTUNREACH\n/);
  assert.match(text, /\n {2}healthy {2}h1 {2,}load 0\.2\/2 CPUs, memory 75% available, disk 20% used at most\n/, 'the healthy hosts next to the one with a problem');
  // Components are degraded by h3 (a member each): every check shown. HAProxy and keepalived are healthy: one line.
  assert.equal(lines.find((l) => l.startsWith('HAPROXY')), 'HAPROXY     healthy  4 checks — write path 10.1.1.200:5000: a PostgreSQL primary answers (from h4, h5)');
  assert.equal(lines.find((l) => l.startsWith('KEEPALIVED')), 'KEEPALIVED  healthy  1 check — vip db-vip 10.1.1.200: held by h4; answers on 5000');
  assert.ok(!text.includes('haproxy h4'), 'the healthy component\'s own checks are not listed');
  assert.match(lines.at(-1) ?? '', /^4\/5 hosts reached, 0\.10 s, 1970-01-01T00:00:00\.000Z \(--all: every check\)$/);
  const all = renderReport(r, undefined, { all: true });
  assert.match(all, /\nHAPROXY {5}healthy\n {2}healthy {2}write path 10\.1\.1\.200:5000 +a PostgreSQL primary answers \(from h4, h5\)\n {2}healthy {2}haproxy h4 /);
  assert.equal(all.split('\n').length, 1 + r.components.length + r.components.reduce((n, c) => n + c.checks.length, 0) + 1);
  assert.doesNotMatch(text, /\x1b/);
  const painted = renderReport(r, { verdict: (v, t) => `<${v}>${t}</>`, dim: (t) => t });
  assert.match(painted, /^<degraded>DEGRADED<\/> t/);
});

test('summary: alike problems of one component are one clause naming its checks', () => {
  const load = (h: string, l: string): CheckLine => ({ component: 'hosts', check: h, verdict: 'degraded', host: h, reason: `load ${l} (5 min) on 2 CPUs, above 2 per CPU` });
  const hosts = ['a', 'b', 'c', 'd', 'e', 'f'];
  assert.equal(summarizeProblems(hosts.map((h) => load(h, '7.5'))), 'hosts: a, b, c, d and 2 more: load 7.5 (5 min) on 2 CPUs, above 2 per CPU');
  assert.equal(summarizeProblems(hosts.slice(0, 5).map((h) => load(h, '7.5'))), 'hosts: a, b, c, d, e: load 7.5 (5 min) on 2 CPUs, above 2 per CPU', 'five names are shorter than "4 and 1 more"');
  assert.equal(summarizeProblems([load('a', '7.5'), load('b', '6.1')]), 'hosts: a, b: load 7.5 (5 min) on 2 CPUs, above 2 per CPU (a; alike on the others)');
  // Different verdicts, components or reasons stay apart; a check that does not name its host gets it in brackets.
  const mixed: CheckLine[] = [
    load('a', '7.5'),
    { component: 'hosts', check: 'b', verdict: 'down', host: 'b', reason: 'host unreachable: connect ETIMEDOUT' },
    { component: 'etcd', check: 'member b', verdict: 'down', host: 'b', reason: 'host unreachable: connect ETIMEDOUT' },
    { component: 'patroni', check: 'leader', verdict: 'down', host: 'b', reason: 'no leader' },
  ];
  assert.equal(summarizeProblems(mixed), 'hosts: a: load 7.5 (5 min) on 2 CPUs, above 2 per CPU; hosts: b: host unreachable: connect ETIMEDOUT; etcd: member b: host unreachable: connect ETIMEDOUT; patroni: leader (b): no leader');
});

test('judge: monitoring — every target up and no alert is healthy; a target down, a firing alert, Prometheus stopped are named', async () => {
  const inv = await inventory('  - { name: h6, address: 10.1.1.16, roles: [monitoring] }\n');
  const target = (job: string, host: string, health = 'up', lastError = '') => ({ labels: { job, host, instance: `${host}:1` }, health, lastError });
  const targets = (list: unknown[]) => ({ stdout: http(200, JSON.stringify({ status: 'success', data: { activeTargets: list, droppedTargets: [] } })), code: 0 });
  const alerts = (list: unknown[]) => ({ stdout: http(200, JSON.stringify({ status: 'success', data: { alerts: list } })), code: 0 });
  const all = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => target('node', h));
  const monitor = (edit: (o: Record<string, FactOutput>) => void) => (h: string, o: Record<string, FactOutput>) => {
    if (h !== 'h6') return;
    o['monitoring.targets'] = targets(all);
    o['monitoring.alerts'] = alerts([]);
    o['monitoring.alertmanager'] = { stdout: 'HTTP/1.0 200 OK\r\n\r\nOK', code: 0 };
    edit(o);
  };
  const ok = report(inv, results(inv, monitor(() => undefined)));
  const mon = ok.components.find((c) => c.name === 'monitoring');
  assert.deepEqual(mon?.checks.map((l) => [l.check, l.verdict, l.reason]), [
    ['prometheus h6', 'healthy', '6/6 targets up'],
    ['alertmanager h6', 'healthy', 'ready'],
    ['alerts', 'healthy', 'none firing'],
  ]);
  assert.equal(ok.exitCode, 0);
  const bad = report(inv, results(inv, monitor((o) => {
    o['monitoring.targets'] = targets([...all.slice(1), target('etcd', 'h1', 'down', 'Get "http://10.1.1.11:2381/metrics": dial tcp 10.1.1.11:2381: connect: connection refused')]);
    o['monitoring.alerts'] = alerts([{ labels: { alertname: 'EtcdMemberDown', host: 'h1' }, state: 'firing' }, { labels: { alertname: 'TargetDown', host: 'h1' }, state: 'pending' }]);
  })));
  const lines = bad.components.find((c) => c.name === 'monitoring')?.checks ?? [];
  assert.equal(lines[0]?.reason, '1 of 6 targets not up: etcd h1 (Get "http://10.1.1.11:2381/metrics": dial tcp 10.1.1.11:2381: connect: connection refused)');
  assert.equal(lines[2]?.reason, 'firing: EtcdMemberDown h1; pending: TargetDown h1');
  assert.equal(bad.exitCode, 1, 'monitoring is no serving path: degraded');
  const stopped = report(inv, results(inv, monitor((o) => {
    o['units'] = { stdout: 'inactive\nactive\n', code: 0 };
    o['monitoring.targets'] = { stdout: '', code: 1 };
    o['monitoring.alerts'] = { stdout: '', code: 1 };
  })));
  const s = stopped.components.find((c) => c.name === 'monitoring');
  assert.equal(s?.verdict, 'down');
  assert.match(s?.checks[0]?.reason ?? '', /^prometheus\.service inactive; GET \/api\/v1\/targets: exit 1/);
  assert.equal(stopped.serving, true);
});
