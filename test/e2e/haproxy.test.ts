/**
 * HAProxy + keepalived end to end: the real CLI applies `--playbook haproxy` to a lab of two haproxy
 * hosts and one postgresql (+etcd, which the inventory rules require) host (no PostgreSQL runs: its backends are DOWN, which is fine here), with
 * a VIP. The VIP sits on exactly one host, serves the stats page with auth, moves when HAProxy stops
 * on its holder, and a second apply changes and restarts nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { bootLab, cli, events, runEnd, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
let vip = '';
const HOSTS = ['lb1', 'lb2', 'pg1'];
const LB = ['lb1', 'lb2'];

before(async () => {
  lab = await bootLab('hap', HOSTS, [['haproxy'], ['haproxy'], ['postgresql', 'etcd']], (net) => {
    vip = `${net}.100`;
    return { vips: [{ name: 'db-vip', address: vip, role: 'haproxy', routerId: 77 }] };
  });
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];

/** Runs `cmd` on `limit` hosts; host -> { exitCode, stdout }. */
async function run(limit: string, cmd: string): Promise<Record<string, { exitCode: number; stdout: string }>> {
  // pg1 is not touched by the playbook: its host key is first seen here.
  const r = await cli(['exec', ...inv(), '--limit', limit, '--json', '--accept-new-host-keys', '--', cmd]);
  return Object.fromEntries(
    events(r.stdout)
      .filter((e) => typeof e['host'] === 'string' && 'exitCode' in e)
      .map((e) => [String(e['host']), { exitCode: e['exitCode'] === null ? -1 : Number(e['exitCode']), stdout: String(e['stdout'] ?? '') }]),
  );
}

/** The haproxy hosts whose interfaces hold the VIP (`ip -br addr`). */
async function holders(): Promise<string[]> {
  const out = await run('haproxy', 'ip -br addr');
  assert.deepEqual(Object.keys(out).sort(), LB, JSON.stringify(out));
  return LB.filter((h) => new RegExp(`\\s${vip.replace(/\./g, '\\.')}/`).test(out[h]?.stdout ?? ''));
}

async function waitHolders(pred: (h: string[]) => boolean, timeoutMs: number): Promise<{ holders: string[]; ms: number }> {
  const t0 = Date.now();
  let h = await holders();
  while (!pred(h) && Date.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, 500));
    h = await holders();
  }
  return { holders: h, ms: Date.now() - t0 };
}

/**
 * GET http://VIP:7000/;csv from the postgresql host (a client of the VIP that holds no VIP itself),
 * as raw HTTP/1.0 over bash's /dev/tcp (minbase has no curl), with Basic auth when given.
 */
async function stats(auth?: string): Promise<{ status: number; body: string }> {
  const header = auth ? `Authorization: Basic ${Buffer.from(auth).toString('base64')}\\r\\n` : '';
  const cmd = `timeout 5 bash -c 'exec 3<>/dev/tcp/${vip}/7000 && printf "GET /;csv HTTP/1.0\\r\\nHost: vip\\r\\n${header}\\r\\n" >&3 && cat <&3'`;
  const out = (await run('pg1', cmd))['pg1'];
  assert.equal(out?.exitCode, 0, JSON.stringify(out));
  const text = (out?.stdout ?? '').replace(/\r/g, '');
  const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf('\n\n') + 2) };
}

/** Start times of haproxy and keepalived per haproxy host (a restart changes them). */
async function starts(): Promise<Record<string, string>> {
  const out = await run('haproxy', 'systemctl show -p ExecMainStartTimestampMonotonic --value haproxy keepalived');
  return Object.fromEntries(Object.entries(out).map(([h, r]) => [h, r.stdout.trim()]));
}

test('apply --playbook haproxy: VIP on exactly one host, stats through the VIP with auth, configs valid', async () => {
  const first = await cli(['apply', ...inv(), '--playbook', 'haproxy', '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-4000) + first.stderr);
  const end = runEnd(first.stdout);
  assert.deepEqual(end.hosts.map((h) => h.host).sort(), LB, 'only the haproxy hosts are touched');

  const { holders: h } = await waitHolders((x) => x.length === 1, 15_000);
  assert.equal(h.length, 1, `VIP ${vip} on exactly one host, got [${h.join(', ')}]`);

  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const ok = await stats(`admin:${secrets.haproxyStats.reveal()}`);
  if (ok.status !== 200) {
    const diag = await run('haproxy', 'journalctl -u haproxy --no-pager | tail -20; ss -ltnp');
    assert.fail(`stats through the VIP: ${JSON.stringify(ok)}\n${JSON.stringify(diag, null, 1)}`);
  }
  assert.match(ok.body, /^postgres_leader,pg1,/m, 'the postgresql host is a backend of the leader port');
  assert.match(ok.body, /^postgres_replica,pg1,/m);
  assert.equal((await stats()).status, 401, 'no auth, no stats');
  assert.equal((await stats('admin:wrong')).status, 401);

  const checks = await run('haproxy', 'haproxy -c -q -f /etc/haproxy/haproxy.cfg && keepalived -t -f /etc/keepalived/keepalived.conf && sysctl -n net.ipv4.ip_nonlocal_bind && stat -c %a /etc/haproxy/haproxy.cfg');
  for (const name of LB) {
    assert.equal(checks[name]?.exitCode, 0, `${name}: ${JSON.stringify(checks[name])}`);
    assert.match(checks[name]?.stdout ?? '', /^1\n640$/m);
  }
});

test('HAProxy stopped on the VIP holder: the VIP moves to the other host within ~10 s and stays there', async () => {
  const [holder] = await holders();
  assert.ok(holder);
  const other = LB.find((x) => x !== holder) ?? '';
  const stop = await run(holder, 'systemctl stop haproxy');
  assert.equal(stop[holder]?.exitCode, 0);
  try {
    const moved = await waitHolders((x) => x.length === 1 && x[0] === other, 15_000);
    assert.deepEqual(moved.holders, [other], `VIP moved from ${holder} to ${other}`);
    assert.ok(moved.ms <= 12_000, `moved in ${moved.ms} ms`);
    process.stderr.write(`[haproxy e2e] VIP moved ${holder} -> ${other} in ${moved.ms} ms\n`);
  } finally {
    await run(holder, 'systemctl start haproxy');
  }
  // nopreempt: the old holder comes back as BACKUP; the VIP does not flap back.
  await new Promise((r) => setTimeout(r, 6000));
  assert.deepEqual(await holders(), [other]);
});

test('a second apply reports zero changes and restarts or reloads nothing', async () => {
  const before = await starts();
  const again = await cli(['apply', ...inv(), '--playbook', 'haproxy', '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
  const end = runEnd(again.stdout);
  assert.deepEqual(end.hosts.map((h) => [h.host, h.changed]), [['lb1', 0], ['lb2', 0]]);
  assert.equal(events(again.stdout).filter((e) => e.type === 'handler').length, 0, 'no handler ran');
  assert.deepEqual(await starts(), before, 'no service restarted');
  assert.equal((await holders()).length, 1);
});

test('ssh and logs on the lab: a command by inventory name with its exit code, the operator ssh_config read, keepalived journal of both hosts prefixed by host', async () => {
  const hostname = await cli(['ssh', ...inv(), 'lb2', '--', 'hostname']);
  assert.equal(hostname.exitCode, 0, hostname.stderr);
  assert.equal(hostname.stdout.trim(), 'lb2');
  assert.equal((await cli(['ssh', ...inv(), 'lb1', '--', 'exit 7'])).exitCode, 7, 'the remote exit code');
  const unknown = await cli(['ssh', ...inv(), 'nosuch', '--', 'true']);
  assert.equal(unknown.exitCode, 2);
  assert.match(unknown.stderr, /lb1/, 'the known host names are listed');

  // ssh_config is read where the inventory is silent (the lab inventory sets no port): a Port there
  // is used (nothing listens on it: unreachable, exit 3, the port named); -F none reads nothing.
  const cfg = path.join(lab.dir, 'ssh_config');
  await writeFile(cfg, 'Host lb2\n  Port 2299\n');
  const viaConfig = await cli(['ssh', ...inv(), '-F', cfg, 'lb2', '--', 'true']);
  assert.equal(viaConfig.exitCode, 3, viaConfig.stdout + viaConfig.stderr);
  assert.match(viaConfig.stderr, /2299/);
  assert.equal((await cli(['ssh', ...inv(), '-F', 'none', 'lb2', '--', 'true'])).exitCode, 0);

  const logs = await cli(['logs', ...inv(), 'keepalived', '-n', '200']);
  assert.equal(logs.exitCode, 0, logs.stderr);
  const lines = logs.stdout.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, /^lb[12] /, `every line names its host: ${l}`);
  for (const h of LB) assert.ok(lines.some((l) => l.startsWith(`${h} `) && /Keepalived/.test(l)), `${h} has keepalived lines`);
  assert.ok(lines.some((l) => /Entering MASTER STATE/.test(l)), 'the VRRP transitions are there');
});
