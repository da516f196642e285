/**
 * HAProxy + keepalived: haproxy.cfg and keepalived.conf of the seed inventory against golden files
 * (UPDATE_GOLDEN=1 rewrites them), both accepted by the real `haproxy -c` and `keepalived -t`,
 * the interface fact, and the plan of the keepalived.conf task on faked facts.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FactSet } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { haproxyConfig, haproxyTasks } from '../../src/components/haproxy.js';
import { interfaceOfFact, keepalivedConfig, keepalivedConfTask, keepalivedTasks, vrrpPriority } from '../../src/components/keepalived.js';
import { renderFiles } from '../../src/cli/render.js';
import { haproxy } from '../../playbooks/haproxy.js';
import { sha256 } from '../../src/tasks/file.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { tempDir } from '../helpers/local.js';

const secrets = fixedSecrets;

const debian: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: false };

const seed = seedInventory;

function host(inv: Awaited<ReturnType<typeof seed>>, name: string) {
  const h = inv.hosts.find((x) => x.name === name);
  assert.ok(h, name);
  return h;
}

test('golden: haproxy.cfg and keepalived.conf of both seed haproxy hosts', async () => {
  const inv = await seed();
  for (const name of ['airflow', 'haproxy2']) {
    await assertGolden(`haproxy/${name}/etc/haproxy/haproxy.cfg`, haproxyConfig(inv, host(inv, name), secrets, 'debian'));
    await assertGolden(`keepalived/${name}/etc/keepalived/keepalived.conf`, keepalivedConfig(inv, host(inv, name), 'eth0'));
  }
});

test('haproxy.cfg: the shape the reference asks for', async () => {
  const inv = await seed();
  const cfg = haproxyConfig(inv, host(inv, 'airflow'), secrets, 'debian');
  assert.match(cfg, /^defaults\n {4}mode tcp$/m);
  // A dead leader is down after 2 checks 2 s apart (its sessions cut), the new one up after 1: seconds, not tens of them.
  assert.match(cfg, /listen postgres_leader\n(?: {4}bind .*\n)+ {4}option httpchk OPTIONS \/primary\n {4}http-check expect status 200\n(?: {4}#.*\n)* {4}default-server inter 2s fastinter 1s downinter 2s fall 2 rise 1 on-marked-down shutdown-sessions\n/);
  assert.match(cfg, /listen postgres_replica\n[\s\S]*? {4}default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions\n/);
  assert.match(cfg, /listen postgres_replica\n(?: {4}bind .*\n)+ {4}balance roundrobin\n {4}option httpchk OPTIONS \/replica\n/);
  assert.equal((cfg.match(/^ {4}server sql\d 192\.168\.83\.\d+:5432 maxconn \d+ check port 8008$/gm) ?? []).length, 6);
  assert.match(cfg, /bind 192\.168\.83\.210:5000/, 'binds the VIP');
  assert.match(cfg, /bind 192\.168\.83\.129:7000/, 'binds its own address');
  assert.match(cfg, /listen stats\n {4}mode http\n/);
  assert.match(cfg, /stats auth admin:fixed-haproxyStats-value/);
  const maxconn = Number(/^ {4}maxconn (\d+)$/m.exec(cfg)?.[1]);
  assert.ok(maxconn > 100, 'maxconn sized for Airflow');
  assert.match(cfg, /timeout client 1h\n {4}timeout server 1h/, 'above pool_recycle 1800 s');
});

test('keepalived.conf: both BACKUP + nopreempt, priorities by host order, unicast peers, no auth', async () => {
  const inv = await seed();
  const a = keepalivedConfig(inv, host(inv, 'airflow'), 'host0');
  const b = keepalivedConfig(inv, host(inv, 'haproxy2'), 'host0');
  for (const c of [a, b]) {
    assert.match(c, /state BACKUP\n {4}nopreempt/);
    assert.match(c, /virtual_router_id 51\n/);
    assert.match(c, /192\.168\.83\.210\/24 dev host0/);
    assert.doesNotMatch(c, /^\s*(authentication|auth_type|auth_pass)/m);
    assert.doesNotMatch(c, /nfs-vip|192\.168\.83\.220/, 'the NFS VIP belongs to the nfs hosts');
    assert.doesNotMatch(c, /^\s*weight/m, 'with nopreempt only FAULT moves the VIP');
  }
  assert.match(a, /priority 150\n[\s\S]*unicast_src_ip 192\.168\.83\.129\n {4}unicast_peer \{\n {8}192\.168\.83\.154\n {4}\}/);
  assert.match(b, /priority 100\n[\s\S]*unicast_src_ip 192\.168\.83\.154\n {4}unicast_peer \{\n {8}192\.168\.83\.129\n {4}\}/);
  assert.deepEqual([0, 1, 2].map((i) => vrrpPriority(i, 3)), [150, 100, 50]);
  assert.deepEqual([0, 4].map((i) => vrrpPriority(i, 5)), [150, 10]);
  // The NFS hosts get their own VIP (role nfs) with its own check.
  const nfs = keepalivedConfig(inv, host(inv, 'nfs2'), 'eth0');
  assert.match(nfs, /virtual_router_id 52[\s\S]*192\.168\.83\.220\/24/);
  assert.match(nfs, /is-active --quiet nfs-server/);
  assert.deepEqual(keepalivedTasks(inv, host(inv, 'mq1')), [], 'no VIP, no keepalived');
});

test('the real `haproxy -c -f` and `keepalived -t -f` accept the rendered files', async () => {
  const inv = await seed();
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    for (const name of ['airflow', 'haproxy2']) {
      for (const family of ['debian', 'rhel'] as const) {
        const p = path.join(dir, `${name}-${family}.cfg`);
        await writeFile(p, haproxyConfig(inv, host(inv, name), secrets, family));
        execFileSync('haproxy', ['-c', '-q', '-f', p], { stdio: 'pipe' });
      }
      const k = path.join(dir, `${name}.conf`);
      await writeFile(k, keepalivedConfig(inv, host(inv, name), 'eth0'));
      execFileSync('keepalived', ['-t', '-f', k], { stdio: 'pipe' });
    }
    // And they refuse a broken one (so `validate` means something).
    const bad = path.join(dir, 'bad.conf');
    await writeFile(bad, keepalivedConfig(inv, host(inv, 'airflow'), 'eth0').replace('virtual_router_id 51', 'virtual_router_id 999'));
    assert.throws(() => execFileSync('keepalived', ['-t', '-f', bad], { stdio: 'pipe' }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('interface fact: the interface holding the address, veth suffix stripped; none -> undefined', () => {
  const f = interfaceOfFact('10.1.2.11');
  const out = [
    '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
    '2: host0@if5    inet 10.1.2.111/24 brd 10.1.2.255 scope global host0\\       valid_lft forever',
    '2: host0@if5    inet 10.1.2.11/24 brd 10.1.2.255 scope global host0\\       valid_lft forever',
  ].join('\n');
  assert.equal(f.parse(out, 0), 'host0');
  assert.equal(f.parse(out.split('\n').slice(0, 2).join('\n'), 0), undefined);
});

test('keepalived.conf task: interface from the fact, from vars.interface, or an error naming the fix', async () => {
  const inv = await seed();
  const h = host(inv, 'airflow');
  const task = keepalivedConfTask(inv, h);
  const keys = task.facts(debian).map((f) => f.key);
  assert.deepEqual(keys, ['ip-o-4-addr', 'path:/etc/keepalived/keepalived.conf:-']);
  const want = keepalivedConfig(inv, h, 'ens18');
  const facts = (present: string | undefined, ipOut: string) =>
    new FactSet(
      new Map([
        ['ip-o-4-addr', { stdout: ipOut, code: 0 }],
        [
          'path:/etc/keepalived/keepalived.conf:-',
          present === undefined
            ? { stdout: 'absent\n', code: 0 }
            : { stdout: `present|644|root|root|regular file|${sha256(present)}\n${Buffer.from(present).toString('base64')}`, code: 0 },
        ],
      ]),
    );
  const ip = '2: ens18    inet 192.168.83.129/24 brd 192.168.83.255 scope global ens18\\ valid_lft forever';
  const first = task.plan(facts(undefined, ip), debian);
  assert.equal(first.changed, true);
  assert.deepEqual(first.changes, ['create /etc/keepalived/keepalived.conf']);
  assert.ok(first.ops.some((o) => o.kind === 'exec' && /keepalived -t -f/.test(o.cmd.render())), 'validated before it replaces');
  assert.deepEqual(first.notify.map((n) => n.id), ['reload:keepalived']);
  const put = first.ops.find((o) => o.kind === 'put' && o.path === '/etc/keepalived/keepalived.conf');
  assert.equal(put?.kind === 'put' ? put.content.toString() : '', want);
  const again = task.plan(facts(want, ip), debian);
  assert.equal(again.changed, false);
  assert.equal(again.ops.length, 0);
  assert.throws(() => task.plan(facts(want, ''), debian), /airflow: no interface holds 192\.168\.83\.129.*vars\.interface/);
  const pinned = keepalivedConfTask(inv, { ...h, vars: { interface: 'bond0' } });
  assert.equal(pinned.files?.(debian)[0]?.content.toString(), keepalivedConfig(inv, h, 'bond0'));
});

test('haproxy tasks: ip_nonlocal_bind before the config, validated, reload on change; render lists the files', async () => {
  const inv = await seed();
  const tasks = haproxyTasks(inv, host(inv, 'airflow'), secrets, 'debian');
  assert.deepEqual(tasks.map((t) => t.name), [
    'sysctl net.ipv4.ip_nonlocal_bind',
    'packages present haproxy',
    'server state file /var/lib/haproxy/server-state',
    'template /etc/haproxy/haproxy.cfg',
    'service haproxy enabled, started',
  ]);
  // The state file the config names exists before `haproxy -c` reads the config, and is made once.
  const stateTask = tasks[2]!;
  assert.deepEqual(stateTask.facts(debian).map((f) => f.cmd.render()), ["test -e /var/lib/haproxy/server-state"]);
  // A changed config reloads through the state-keeping handler (test/unit/haproxy-reload.test.ts).
  const cfgTask = tasks[3]!;
  const planned = cfgTask.plan(new FactSet(new Map(cfgTask.facts(debian).map((f) => [f.key, { stdout: 'absent\n', code: 0 }]))), debian);
  assert.deepEqual(planned.notify.map((n) => n.name), ['reload haproxy (server states kept)']);
  const files = renderFiles(haproxy, inv, secrets, 'debian');
  assert.deepEqual(
    files.map((f) => `${f.host}:${f.path}`),
    [
      'airflow:/etc/sysctl.d/60-airflow-ha-haproxy.conf',
      'airflow:/etc/haproxy/haproxy.cfg',
      'haproxy2:/etc/sysctl.d/60-airflow-ha-haproxy.conf',
      'haproxy2:/etc/haproxy/haproxy.cfg',
      'airflow:/etc/keepalived/keepalived.conf',
      'haproxy2:/etc/keepalived/keepalived.conf',
    ],
  );
  assert.equal(files.find((f) => f.path === '/etc/haproxy/haproxy.cfg')?.mode, '0640', 'the stats password is not world-readable');
});
