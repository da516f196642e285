/**
 * HAProxy's reload with server states kept (HAPROXY_RELOAD_SCRIPT), against the real haproxy of
 * this machine on 127.0.0.1: two check servers stand for a Patroni leader (200 on /primary) and a
 * replica (503). A plain reload starts the replica UP until its first check (the defect); the
 * script's reload keeps it DOWN throughout, leaves the state file at its version line, and does not
 * carry a port the config changed.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HAPROXY_RELOAD_SCRIPT, haproxyReloadHandler } from '../../src/components/haproxy.js';
import { tempDir } from '../helpers/local.js';

const run = promisify(execFile);
let dir = '';
let cfg = '';
let sock = '';
let state = '';
const checkServers: http.Server[] = [];
const ports: number[] = [];

/** An HTTP server on 127.0.0.1 that answers every request with `status`; its port. */
async function checkServer(status: number): Promise<number> {
  const s = http.createServer((_req, res) => res.writeHead(status).end());
  checkServers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

function config(replicaPort: number): string {
  return [
    'global',
    `    stats socket ${sock} mode 600 level admin`,
    `    server-state-file ${state}`,
    'defaults',
    '    mode tcp',
    '    timeout connect 4s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    timeout check 5s',
    '    load-server-state-from-file global',
    'backend postgres_leader',
    '    option httpchk OPTIONS /primary',
    '    http-check expect status 200',
    '    default-server inter 2s fastinter 1s downinter 2s fall 2 rise 1',
    `    server pg1 127.0.0.1:${ports[0]} check port ${ports[0]}`,
    `    server pg2 127.0.0.1:${replicaPort} check port ${replicaPort}`,
    '',
  ].join('\n');
}

/** `show servers state` over the admin socket, as server name -> { op: srv_op_state (2 = UP, 0 = DOWN), port: srv_port }. */
function servers(): Promise<Record<string, { op: string; port: string }>> {
  return new Promise((resolve, reject) => {
    let out = '';
    const c = net.createConnection(sock, () => c.end('show servers state\n'));
    c.on('data', (d: Buffer) => (out += d.toString('utf8')));
    c.on('error', reject);
    c.on('close', () => {
      const rows = out.split('\n').filter((l) => /^\d+ postgres_leader /.test(l)).map((l) => l.split(' '));
      resolve(Object.fromEntries(rows.map((f) => [f[3], { op: f[5]!, port: f[18]! }])));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, pred: (s: Record<string, { op: string; port: string }>) => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if (pred(await servers())) return;
    } catch {
      // the socket is briefly absent during a reload
    }
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what}: ${JSON.stringify(await servers().catch(String))}`);
}

/** The states pg2 went through in `ms` after now, polled every 25 ms. */
async function watchReplica(ms: number): Promise<string[]> {
  const seen: string[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      seen.push((await servers())['pg2']?.op ?? '?');
    } catch {
      seen.push('no-socket');
    }
    await sleep(25);
  }
  return seen;
}

const master = async () => (await readFile(path.join(dir, 'pid'), 'utf8')).trim();

before(async () => {
  dir = tempDir('haproxy-reload-');
  await mkdir(dir);
  sock = path.join(dir, 'admin.sock');
  state = path.join(dir, 'server-state');
  cfg = path.join(dir, 'haproxy.cfg');
  ports.push(await checkServer(200), await checkServer(503), await checkServer(503));
  await writeFile(state, '1\n');
  await writeFile(cfg, config(ports[1]!));
  // Master-worker mode, as systemd runs it (-Ws); -D: the master in the background, its pid in the file.
  await run('haproxy', ['-W', '-D', '-f', cfg, '-p', path.join(dir, 'pid')]);
  await until('pg1 UP, pg2 DOWN', (s) => s['pg1']?.op === '2' && s['pg2']?.op === '0');
});

after(async () => {
  const pid = await master().catch(() => '');
  if (pid) process.kill(Number(pid), 'SIGTERM');
  for (const s of checkServers) s.close();
  await rm(dir, { recursive: true, force: true });
});

test('a plain reload starts the replica UP before its first check: the window the script closes', async () => {
  process.kill(Number(await master()), 'SIGUSR2');
  const seen = await watchReplica(1500);
  assert.ok(seen.includes('2'), `the 503 server was UP at some point after a plain reload: ${seen.join(',')}`);
  await until('pg2 DOWN again', (s) => s['pg2']?.op === '0');
});

test('the reload script keeps the replica DOWN and the leader UP, and puts the state file back', async () => {
  const { stdout } = await run('python3', ['-c', HAPROXY_RELOAD_SCRIPT, sock, cfg, state, 'kill', '-USR2', await master()]);
  assert.equal(stdout, '');
  // The script returned once a new process answered: from here on, the new process's states.
  const seen = await watchReplica(1500);
  assert.ok(seen.length >= 20 && seen.every((s) => s === '0'), `pg2 stayed DOWN: ${seen.join(',')}`);
  assert.equal((await servers())['pg1']?.op, '2');
  assert.equal(await readFile(state, 'utf8'), '1\n');
});

test('a server whose port the new config changed is not given its old port from the state', async () => {
  await writeFile(cfg, config(ports[2]!));
  await run('python3', ['-c', HAPROXY_RELOAD_SCRIPT, sock, cfg, state, 'kill', '-USR2', await master()]);
  await until('pg2 on its new port', (s) => s['pg2']?.port === String(ports[2]));
  assert.equal((await servers())['pg1']?.op, '2', 'the unchanged leader kept its state');
});

test('the handler reloads through systemctl with the family\'s admin socket, the config and the state file', () => {
  const h = haproxyReloadHandler('debian');
  assert.equal(h.id, 'reload:haproxy');
  const cmd = h.ops.map((o) => ('cmd' in o ? o.cmd.render() : '')).join('\n');
  assert.match(cmd, /\/run\/haproxy\/admin\.sock '?\/etc\/haproxy\/haproxy\.cfg'? '?\/var\/lib\/haproxy\/server-state'? systemctl reload haproxy$/);
  assert.match(haproxyReloadHandler('rhel').ops.map((o) => ('cmd' in o ? o.cmd.render() : '')).join(''), /\/var\/lib\/haproxy\/stats /);
});
