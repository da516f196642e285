/**
 * Monitoring end to end on three lab hosts: each etcd + PostgreSQL/Patroni + RabbitMQ, m2 and m3
 * also HAProxy (keepalived with a VIP: a single VIP host has no unicast peer, which keepalived -t
 * refuses), m3 the monitoring role. After `bootstrap`, Prometheus's
 * /api/v1/targets shows every target up (node_exporter on each host, etcd, Patroni,
 * postgres_exporter, RabbitMQ's plugin, HAProxy's exporter, Prometheus and Alertmanager), the
 * metrics the alert rules read exist under their names, an exporter port is closed to a host that
 * is not a monitoring host, `status` has a healthy monitoring component, and a second bootstrap
 * changes nothing. Then the Patroni leader is stopped: the failover alert reaches Alertmanager's API
 * within one scrape interval plus one evaluation after the new leader is elected, and resolves.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bootLab, cli, ignoreSharedLoad, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { checksOf, statusUntil } from '../helpers/status.js';

let lab: TestLab;
let vip = '';
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const HOSTS = ['m1', 'm2', 'm3'];
/** Seconds between scrapes (and rule evaluations) in this lab: the schema's minimum, so the test waits little. */
const SCRAPE_SEC = 5;

before(async () => {
  lab = await bootLab('mon', HOSTS, [DATA, [...DATA, 'haproxy'], [...DATA, 'haproxy', 'monitoring']], (net) => {
    vip = `${net}.200`;
    return {
      vips: [{ name: 'db-vip', address: vip, role: 'haproxy', routerId: 81 }],
      // The replica port clears RabbitMQ's stream range (6000-6500) on m3.
      ports: { haproxyReplica: 5001 },
      monitoring: { scrapeIntervalSec: SCRAPE_SEC },
    };
  });
  // The lab's containers see this shared machine's load average, not their own: raise the bar.
  await ignoreSharedLoad(lab);
});

after(() => tearDown(lab));

const inv = () => ['-i', lab.inventoryFile];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const address = (name: string) => lab.loaded.inventory.hosts.find((h) => h.name === name)!.address;

/** GET a JSON document from m3's Prometheus or Alertmanager, from this machine (an operator machine of the lab: the firewall admits it). */
async function api<T>(port: number, path: string): Promise<T> {
  const r = await fetch(`http://${address('m3')}:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  assert.equal(r.status, 200, `${path}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

interface Target { labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }
const targets = async () => (await api<{ data: { activeTargets: Target[] } }>(9090, '/api/v1/targets?state=active')).data.activeTargets;
const query = async (q: string) => (await api<{ data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }>(9090, `/api/v1/query?query=${encodeURIComponent(q)}`)).data.result;
const amAlerts = async () => api<Array<{ labels: Record<string, string>; status: { state: string } }>>(9093, '/api/v2/alerts');

/** Polls `f` every second until it returns a value that is not undefined, or fails after `timeoutMs` with `what` and the last value seen. */
async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number, last: () => unknown = () => ''): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return { value: v, ms: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(await Promise.resolve(last()).catch((e) => String(e))).slice(0, 4000)}`);
    await sleep(1000);
  }
}

test('bootstrap: Prometheus scrapes every target and every one is up; the rules read metrics that exist; exporters are closed to other hosts', async () => {
  const first = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-5000) + first.stderr);
  const { value: all, ms } = await until(
    'every target up',
    async () => {
      const t = await targets();
      return t.length > 0 && t.every((x) => x.health === 'up') ? t : undefined;
    },
    120_000,
    async () => (await targets()).filter((x) => x.health !== 'up').map((x) => [x.labels['job'], x.labels['host'], x.lastError]),
  );
  const jobs = (job: string) => all.filter((t) => t.labels['job'] === job).map((t) => t.labels['host']).sort();
  assert.deepEqual(jobs('node'), HOSTS);
  for (const job of ['etcd', 'patroni', 'postgres', 'rabbitmq', 'rabbitmq-queues']) assert.deepEqual(jobs(job), HOSTS, job);
  assert.deepEqual(jobs('haproxy'), ['m2', 'm3']);
  for (const job of ['prometheus', 'alertmanager']) assert.deepEqual(jobs(job), ['m3'], job);
  assert.equal(all.length, 3 * 6 + 4);
  process.stderr.write(`[monitoring e2e] ${all.length} targets, all up ${ms} ms after bootstrap ended\n`);

  // The series the alert rules read, under the names the rules use (read on the lab's exporters).
  const one = async (q: string) => (await query(q)).map((r) => Number(r.value[1]));
  assert.deepEqual(await one('sum(patroni_primary{job="patroni"} or patroni_master{job="patroni"})'), [1], 'one Patroni leader');
  assert.equal((await query('patroni_replica{job="patroni"} == 1')).length, 2);
  assert.deepEqual(await one('sum(patroni_sync_standby{job="patroni"})'), [1], 'synchronous mode: one sync standby');
  assert.equal((await query('patroni_xlog_replayed_location{job="patroni"}')).length, 3);
  assert.deepEqual(await one('min(etcd_server_has_leader{job="etcd"})'), [1]);
  assert.equal((await query('rabbitmq_alarms_memory_used_watermark')).length, 3);
  assert.equal((await query('rabbitmq_alarms_free_disk_space_watermark')).length, 3);
  assert.deepEqual(await one('haproxy_backend_active_servers{job="haproxy",proxy="postgres_leader"}'), [1, 1]);
  assert.deepEqual(await one('sum(airflow_ha_vip_master{vip="db-vip"})'), [1], 'the VIP state from keepalived via the textfile collector');
  assert.deepEqual(await one('min(pg_up{job="postgres"})'), [1], 'postgres_exporter logs in with its pg_monitor role');
  // The clock alert reads node_timex_*, which node_exporter's timex collector gets from adjtimex(2).
  // A host where that collector fails must be a container (systemd-nspawn's seccomp filter refuses
  // adjtimex: the lab's case, never a VM's): then the series is absent and the alert cannot fire
  // there (README "Monitoring" says so).
  const timex = await query('node_scrape_collector_success{collector="timex"}');
  assert.equal(timex.length, 3, JSON.stringify(timex));
  const withClock = (await query('node_timex_offset_seconds')).map((r) => r.metric['host']);
  for (const r of timex) {
    const host = r.metric['host'] ?? '';
    if (Number(r.value[1]) === 1) assert.ok(withClock.includes(host), `${host}: timex collector ok, node_timex_offset_seconds present`);
    else assert.equal((await on(host, 'systemd-detect-virt -c || true')).stdout.trim(), 'systemd-nspawn', `${host}: the timex collector fails only in a container`);
  }
  assert.ok((await query('node_filesystem_avail_bytes')).length > 0);

  // node_exporter on m1 answers m3 (the monitoring host) and not m2; m1's own exporter port is open to m3 only.
  const probe = (from: string, to: string, port: number) => on(from, `timeout 3 bash -c 'exec 3<>/dev/tcp/${address(to)}/${port}' && echo open || echo closed`);
  assert.equal((await probe('m3', 'm1', 9100)).stdout.trim(), 'open');
  assert.equal((await probe('m2', 'm1', 9100)).stdout.trim(), 'closed');
  assert.equal((await probe('m2', 'm1', 9187)).stdout.trim(), 'closed');
  assert.equal((await probe('m1', 'm2', 2381)).stdout.trim(), 'closed');
});

test('status has a monitoring component: Prometheus with every target up, Alertmanager ready', async () => {
  const s = await statusUntil(lab.inventoryFile, 'monitoring healthy', (x) => checksOf(x).filter((l) => l.component === 'monitoring').slice(0, 2).every((l) => l.verdict === 'healthy'), 60_000);
  const lines = checksOf(s).filter((l) => l.component === 'monitoring');
  assert.deepEqual(lines.map((l) => l.check), ['prometheus m3', 'alertmanager m3', 'alerts']);
  assert.match(lines[0]?.reason ?? '', /^22\/22 targets up$/);
  process.stderr.write(`[monitoring e2e] status monitoring: ${lines.map((l) => `${l.check}: ${l.verdict} ${l.reason}`).join(' | ')}\n`);
});

test('a second bootstrap changes nothing', async () => {
  const second = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((h) => h.changed), HOSTS.map(() => 0));
});

test('the Patroni leader stopped: PatroniFailover reaches Alertmanager once a new leader is elected, and resolves', async () => {
  const leader = (await query('patroni_primary{job="patroni"} == 1 or patroni_master{job="patroni"} == 1'))[0]?.metric['host'] ?? '';
  assert.ok(HOSTS.includes(leader), `leader ${leader}`);
  const t0 = Date.now();
  assert.equal((await on(leader, 'systemctl stop patroni')).code, 0);
  try {
    const elected = await until('a new Patroni leader', async () => {
      const r = await query('patroni_primary{job="patroni"} == 1 or patroni_master{job="patroni"} == 1');
      const h = r[0]?.metric['host'];
      return h && h !== leader ? h : undefined;
    }, 90_000);
    const seen = await until(
      'PatroniFailover in Alertmanager',
      async () => ((await amAlerts()).some((a) => a.labels['alertname'] === 'PatroniFailover' && a.status.state === 'active') ? true : undefined),
      // The alert has no `for`: one evaluation after the scrape that saw the new leader, then Prometheus sends it.
      2 * SCRAPE_SEC * 1000 + 15_000,
      amAlerts,
    );
    process.stderr.write(`[monitoring e2e] leader ${leader} stopped; ${elected.value} elected after ${elected.ms} ms; PatroniFailover active in Alertmanager ${seen.ms} ms later (${Date.now() - t0} ms after the stop)\n`);
  } finally {
    assert.equal((await on(leader, 'systemctl start patroni')).code, 0);
  }
  // Resolved: the failover window (2m) passes and Prometheus sends the resolution.
  const gone = await until('PatroniFailover resolved', async () => ((await amAlerts()).some((a) => a.labels['alertname'] === 'PatroniFailover' && a.status.state === 'active') ? undefined : true), 240_000, amAlerts);
  process.stderr.write(`[monitoring e2e] PatroniFailover resolved ${gone.ms} ms after it was seen\n`);
  await until('every target up again', async () => ((await targets()).every((x) => x.health === 'up') ? true : undefined), 120_000, async () => (await targets()).filter((x) => x.health !== 'up'));
});
