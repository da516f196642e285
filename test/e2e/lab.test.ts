/**
 * End-to-end: a 3-host lab of its own (random bridge, network and names, so it never collides with
 * another lab on this machine) comes up, answers SSH with the lab key, installs through the apt
 * proxy, has no way out, survives a power-off + start, and is always torn down.
 * Needs root, systemd-nspawn and a Debian 12 mirror (the first run builds the cached base root).
 * Run: npx tsc -p . && node --test dist/test/e2e/lab.test.js
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, execaSync } from 'execa';
import { parse } from 'yaml';
import { Inventory } from '../../src/inventory/schema.js';
import { labDown, labKeyFile, labStart, labStatus, labStop, labUp } from '../../src/lab/lab.js';
import { InputError } from '../../src/core/errors.js';
import { hostSourcesFile, parseDeb822, parseSourcesList, pickMirrors } from '../../src/lab/apt.js';
import { isHostOf, overlaps, parseCidr } from '../../src/lab/net.js';

const skip =
  process.getuid?.() !== 0
    ? 'needs root (systemd-nspawn, mount, ip link)'
    : !existsSync('/etc/debian_version')
      ? 'needs a Debian machine (debootstrap, apt)'
      : false;

/** A random lab id and /24 in 10.200-250.x.0 that no interface of this machine uses yet. */
function pickFree(): { id: number; net: string } {
  const { stdout } = execaSync('ip', ['-o', 'addr', 'show'], { reject: false });
  for (;;) {
    const id = 1000 + Math.floor(Math.random() * 9000);
    const net = `10.${200 + Math.floor(Math.random() * 51)}.${Math.floor(Math.random() * 256)}`;
    if (!stdout.includes(` ${net}.`) && !stdout.includes(`ahlt${id}`)) return { id, net };
  }
}
const { id, net } = pickFree();
const bridge = `ahlt${id}`;
const names = ['h1', 'h2', 'h3'];

function inventoryYaml(): string {
  return [
    'cluster:',
    `  name: e2e-lab-${id}`,
    `  network: ${net}.0/24`,
    'ssh:',
    '  user: root',
    '  identityFile: lab.state/lab_ed25519',
    'lab:',
    `  bridge: ${bridge}`,
    `  address: ${net}.1`,
    `  prefix: ahlt${id}`,
    'hosts:',
    ...names.map((n, i) => `  - { name: ${n}, address: ${net}.${11 + i}, roles: [worker] }`),
    '',
  ].join('\n');
}

test('lab: 3 hosts up, reachable by SSH, apt through the proxy, no default route, then down', { skip, timeout: 15 * 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'airflow-ha-lab-e2e-'));
  const file = join(dir, 'lab.yaml');
  await writeFile(file, inventoryYaml());
  const inv = Inventory.parse(parse(await readFile(file, 'utf8')));
  const paths = { stateDir: join(dir, 'lab.state') };
  const key = labKeyFile(paths);
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    t.diagnostic(l);
  };
  const addressOf = (name: string) => inv.hosts.find((h) => h.name === name)?.address ?? assert.fail(name);
  const ssh = (name: string, command: string) =>
    execa('ssh', [
      '-i', key,
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'LogLevel=ERROR',
      '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=10',
      `root@${addressOf(name)}`,
      command,
    ], { reject: false });

  let failure: unknown;
  try {
    let started = Date.now();
    await labUp(inv, paths, log);
    t.diagnostic(`labUp (3 hosts) took ${((Date.now() - started) / 1000).toFixed(1)} s`);

    for (const name of names) {
      const r = await ssh(name, 'hostname');
      assert.equal(r.exitCode, 0, `ssh ${name}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), name);
    }

    const routes = await ssh('h1', 'ip -4 route show');
    assert.equal(routes.exitCode, 0, routes.stderr);
    assert.doesNotMatch(routes.stdout, /^default/m, 'the lab hosts must have no default route');
    assert.match(routes.stdout, new RegExp(`^${net.replaceAll('.', '\\.')}\\.0/24 dev host0`, 'm'));

    const apt = await ssh('h1', 'apt-get update');
    assert.equal(apt.exitCode, 0, `apt-get update through the lab proxy failed:\n${apt.stdout}\n${apt.stderr}`);

    // Idempotent: a second run finds every host running and leaves it alone.
    lines.length = 0;
    started = Date.now();
    await labUp(inv, paths, log);
    assert.equal(lines.filter((l) => l.includes('already running')).length, names.length, lines.join('\n'));
    assert.ok(Date.now() - started < 15_000, 'a second labUp on a running lab is quick');

    const status = await labStatus(inv, paths);
    assert.deepEqual(
      status.map((s) => [s.name, s.running, s.sshUp, s.container]),
      names.map((n) => [n, true, true, `ahlt${id}-${n}`]),
    );

    // Power-off and boot again: the host keeps its disk and identity.
    const machineId = (await ssh('h2', 'cat /etc/machine-id')).stdout.trim();
    await labStop(inv, paths, 'h2', log, { hard: true });
    const stopped = (await labStatus(inv, paths)).find((s) => s.name === 'h2');
    assert.equal(stopped?.running, false);
    assert.equal(stopped?.sshUp, false);
    await labStart(inv, paths, 'h2', log);
    assert.equal((await ssh('h2', 'cat /etc/machine-id')).stdout.trim(), machineId);

    await assert.rejects(labStop(inv, paths, 'nope', log), InputError);
  } catch (e) {
    failure = e;
  }
  // Always torn down; a teardown failure is reported without hiding the test's own failure.
  try {
    await labDown(inv, paths, log);
    const link = await execa('ip', ['link', 'show', 'dev', bridge], { reject: false });
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(dir));
    if (mounts.length === 0) await rm(dir, { recursive: true, force: true });
    assert.notEqual(link.exitCode, 0, `bridge ${bridge} still exists after labDown`);
    assert.deepEqual(mounts, [], 'mounts left behind after labDown');
  } catch (e) {
    if (failure === undefined) throw e;
    throw new AggregateError([failure, e], `${(failure as Error).message}\n(and lab down failed: ${(e as Error).message})`);
  }
  if (failure !== undefined) throw failure;
});

test('lab: an inventory without a lab section or with a host outside the network is refused', async () => {
  const base = parse(inventoryYaml()) as Record<string, unknown>;
  const { lab: _lab, ...noLab } = base;
  await assert.rejects(labUp(Inventory.parse(noLab), { stateDir: '/nonexistent' }, () => {}), InputError);
  const outside = Inventory.parse({ ...base, hosts: [{ name: 'x', address: '192.0.2.77', roles: ['worker'] }] });
  await assert.rejects(labUp(outside, { stateDir: '/nonexistent' }, () => {}), /not a host address of cluster\.network/);
});

test('lab: the mirrors come from this machine\'s apt sources, in either format', () => {
  const deb822 = parseDeb822(
    [
      'Types: deb',
      '# a comment',
      'URIs: http://deb.debian.org/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main contrib',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
      'Types: deb-src',
      'URIs: http://deb.debian.org/debian',
      'Suites: bookworm',
      'Components: main',
      '',
      'Types: deb',
      'URIs: http://deb.debian.org/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      '',
      'Enabled: no',
      'Types: deb',
      'URIs: http://elsewhere.example/debian',
      'Suites: bookworm',
      'Components: main',
    ].join('\n'),
  );
  assert.deepEqual(pickMirrors(deb822), {
    debian: 'http://deb.debian.org/debian/',
    security: 'http://deb.debian.org/debian-security/',
    components: ['main', 'contrib'],
  });
  const oneLine = parseSourcesList('# x\ndeb [arch=amd64 signed-by=/k.gpg] https://mirror.example/debian bookworm main # y\ndeb-src http://a/ bookworm main\n');
  assert.deepEqual(oneLine, [{ uri: 'https://mirror.example/debian/', suites: ['bookworm'], components: ['main'] }]);
  const m = pickMirrors(oneLine);
  assert.equal(m.security, undefined);
  // The hosts fetch over plain http through the proxy (apt-cacher-ng fetches https upstream itself).
  assert.match(hostSourcesFile(m), /^URIs: http:\/\/mirror\.example\/debian\/$/m);
  assert.match(hostSourcesFile(m), /^Suites: bookworm bookworm-updates$/m);
  assert.throws(() => pickMirrors(parseSourcesList('deb http://a/ trixie main')), /no "bookworm" source/);
});

test('lab: IPv4 network arithmetic', () => {
  const net = parseCidr('10.222.83.0/24');
  assert.equal(isHostOf('10.222.83.1', net), true);
  assert.equal(isHostOf('10.222.83.254', net), true);
  assert.equal(isHostOf('10.222.83.0', net), false, 'network address');
  assert.equal(isHostOf('10.222.83.255', net), false, 'broadcast address');
  assert.equal(isHostOf('10.222.84.1', net), false);
  assert.equal(overlaps(net, parseCidr('10.222.0.0/16')), true);
  assert.equal(overlaps(net, parseCidr('10.222.83.128/25')), true);
  assert.equal(overlaps(net, parseCidr('192.0.2.2/24')), false);
  assert.throws(() => parseCidr('10.1.2.3/33'), /not an IPv4 CIDR/);
});
