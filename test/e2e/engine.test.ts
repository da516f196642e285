/**
 * The engine end to end: the real CLI against real lab hosts (systemd containers this test boots on
 * its own bridge), running the demo playbook (packages, templates, a service, the /etc/hosts block).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { bootLab, cli, cliStart, events, runEnd, whenPrinted, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
const HOSTS = ['alpha', 'beta', 'gamma'];

before(async () => {
  lab = await bootLab('eng', HOSTS, [['etcd', 'haproxy'], ['etcd', 'haproxy'], ['etcd', 'flower']]);
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];
/** The engine's demonstration playbook (the default playbook is bootstrap). */
const demo = ['--playbook', 'demo'];

/** `systemctl show` of haproxy's start time on each host (changes only when it restarts). */
async function haproxyStarts(): Promise<Record<string, string>> {
  const r = await cli(['exec', ...inv(), '--limit', 'all', '--json', '--', 'systemctl show -p ExecMainStartTimestampMonotonic --value haproxy']);
  assert.equal(r.exitCode, 0, r.stderr);
  return Object.fromEntries(events(r.stdout).map((e) => [String(e['host']), String(e['stdout']).trim()]));
}

async function sha(host: string, file: string): Promise<string> {
  const r = await cli(['exec', ...inv(), '--limit', host, '--json', '--', `sha256sum ${file} | cut -c1-64`]);
  return String(events(r.stdout)[0]?.['stdout']).trim();
}

test('validate accepts the lab inventory; unknown host keys are refused without --accept-new-host-keys', async () => {
  const v = await cli(['validate', ...inv(), ...demo]);
  assert.equal(v.exitCode, 0, v.stderr);
  // apply, not plan: plan needs the secrets file, which only a run that changes hosts creates.
  const refused = await cli(['apply', ...inv(), ...demo]);
  assert.equal(refused.exitCode, 3, refused.stdout + refused.stderr);
  assert.match(refused.stdout + refused.stderr, /alpha \(10\.\d+\.\d+\.11\).*(unknown|not known)/is);
  assert.match(refused.stdout + refused.stderr, /SHA256:/);
});

test('first apply changes things; the second reports zero changes and restarts nothing', async () => {
  const first = await cli(['apply', ...inv(), ...demo, '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-3000) + first.stderr);
  const end1 = runEnd(first.stdout);
  assert.ok(end1.hosts.every((h) => h.changed > 0), 'every host changed on the first run');

  // The real services: haproxy serves its health page on every host, /etc/hosts resolves the others.
  const health = await cli(['exec', ...inv(), '--limit', 'all', '--json', '--', 'python3 -c "import urllib.request;print(urllib.request.urlopen(\'http://127.0.0.1:8404/\').read().decode())"; getent hosts gamma']);
  for (const e of events(health.stdout)) {
    assert.equal(e['exitCode'], 0);
    assert.match(String(e['stdout']), new RegExp(`^ok ${e['host']}$`, 'm'));
    assert.match(String(e['stdout']), /\.13\s+gamma/);
  }

  const startsBefore = await haproxyStarts();
  const second = await cli(['apply', ...inv(), ...demo, '--json']);
  assert.equal(second.exitCode, 0, second.stderr);
  const ev = events(second.stdout);
  const end2 = runEnd(second.stdout);
  assert.deepEqual(end2.hosts.map((h) => h.changed), [0, 0, 0]);
  assert.ok(end2.hosts.every((h) => h.ok > 0));
  assert.equal(ev.filter((e) => e.type === 'handler').length, 0);
  assert.deepEqual(await haproxyStarts(), startsBefore, 'no service restarted');

  // Human output of a no-op run ends with the summary line.
  const plain = await cli(['apply', ...inv(), ...demo]);
  assert.equal(plain.exitCode, 0);
  assert.match(plain.stdout, /OK: 0 change\(s\) on 3 host\(s\)/);
});

test('plan after a hand edit shows exactly that diff and changes nothing', async () => {
  const file = '/etc/haproxy/haproxy.cfg';
  const edit = await cli(['exec', ...inv(), '--limit', 'beta', '--', `sed -i 's/maxconn 2000/maxconn 1999/' ${file}`]);
  assert.equal(edit.exitCode, 0, edit.stderr);
  const edited = await sha('beta', file);
  const plan = await cli(['plan', ...inv(), ...demo, '--json']);
  assert.equal(plan.exitCode, 0, plan.stderr);
  const changed = events(plan.stdout).filter((e) => e.type === 'task' && e['status'] === 'changed');
  assert.equal(changed.length, 1, JSON.stringify(changed));
  assert.equal(changed[0]?.['host'], 'beta');
  assert.equal(changed[0]?.['task'], `template ${file}`);
  const diff = String(changed[0]?.['diff']);
  assert.match(diff, /^-    maxconn 1999$/m);
  assert.match(diff, /^\+    maxconn 2000$/m);
  assert.equal(diff.split('\n').filter((l) => /^[-+][^-+]/.test(l)).length, 2, 'only the edited line differs');
  assert.ok(!diff.includes('stats auth admin:') || diff.includes('admin:***') || !/admin:[^*\s]/.test(diff));
  assert.equal(await sha('beta', file), edited, 'plan changed nothing');
  // The human plan shows the diff too.
  const human = await cli(['plan', ...inv(), ...demo, '--limit', 'beta']);
  assert.match(human.stdout, /maxconn 1999/);
  const fix = await cli(['apply', ...inv(), ...demo, '--json']);
  const end = runEnd(fix.stdout);
  assert.deepEqual(end.hosts.map((h) => [h.host, h.changed]), [['alpha', 0], ['beta', 2], ['gamma', 0]], 'the template and its reload handler');
});

test('a second concurrent run is refused by the lock (exit 4) while the first holds it', async () => {
  const first = cliStart(['apply', ...inv(), ...demo, '--json']);
  // Pause the first run as soon as it has taken the lock (it emits step_start after taking it).
  assert.ok(await whenPrinted(first, '"type":"step_start"', 30_000), 'the first run started a step');
  first.kill('SIGSTOP');
  try {
    const second = await cli(['apply', ...inv(), ...demo]);
    assert.equal(second.exitCode, 4, second.stdout + second.stderr);
    assert.match(second.stdout + second.stderr, /run lock on alpha is held: .*airflow-ha apply -i/);
    const status = await cli(['lock', 'status', ...inv()]);
    assert.equal(status.exitCode, 4);
    assert.match(status.stdout, /held on alpha/);
  } finally {
    first.kill('SIGCONT');
  }
  const r = await first;
  assert.equal(r.exitCode, 0);
  assert.match((await cli(['lock', 'status', ...inv()])).stdout, /free/);
});

test('killing the run mid-step leaves no half-written file; after lock release a re-run converges', async () => {
  const file = '/etc/haproxy/haproxy.cfg';
  const good: Record<string, string> = {};
  const edited: Record<string, string> = {};
  for (const h of HOSTS) {
    good[h] = await sha(h, file);
    const r = await cli(['exec', ...inv(), '--limit', h, '--', `sed -i 's/timeout connect 5s/timeout connect 6s/' ${file}`]);
    assert.equal(r.exitCode, 0);
    edited[h] = await sha(h, file);
    assert.notEqual(edited[h], good[h]);
  }
  const run = cliStart(['apply', ...inv(), ...demo, '--json']);
  // Kill as the haproxy step begins: uploads of the template are in flight on some hosts.
  await whenPrinted(run, '"step":"haproxy demo service"', 20_000);
  run.kill('SIGKILL');
  await run;
  for (const h of HOSTS) {
    const now = await sha(h, file);
    assert.ok(now === good[h] || now === edited[h], `${h}: ${file} is either the old or the new file, never partial (sha ${now})`);
    const check = await cli(['exec', ...inv(), '--limit', h, '--', `haproxy -c -q -f ${file}`]);
    assert.equal(check.exitCode, 0, `${h}: config valid`);
  }
  // The killed run still holds the lock: it is reported, refused, then released on purpose.
  const held = await cli(['apply', ...inv(), ...demo]);
  assert.equal(held.exitCode, 4);
  const rel = await cli(['lock', 'release', ...inv()]);
  assert.equal(rel.exitCode, 0);
  assert.match(rel.stdout, /released the lock held by/);
  const again = await cli(['apply', ...inv(), ...demo, '--json']);
  assert.equal(again.exitCode, 0, again.stderr);
  for (const h of HOSTS) assert.equal(await sha(h, file), good[h]);
  const final = await cli(['apply', ...inv(), ...demo, '--json']);
  const end = runEnd(final.stdout);
  assert.deepEqual(end.hosts.map((h) => h.changed), [0, 0, 0]);
});

test('exec runs ad-hoc commands per host and reports failures with exit 1', async () => {
  const ok = await cli(['exec', ...inv(), '--limit', 'haproxy', '--', 'uname -n']);
  assert.equal(ok.exitCode, 0);
  assert.match(ok.stdout, /^alpha \| exit 0 \| alpha$/m);
  assert.match(ok.stdout, /^beta \| exit 0 \| beta$/m);
  assert.doesNotMatch(ok.stdout, /gamma/);
  const bad = await cli(['exec', ...inv(), '--limit', 'gamma', '--', 'echo nope >&2; exit 3']);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stdout, /gamma \| exit 3 \| nope/);
  const badLimit = await cli(['exec', ...inv(), '--limit', 'nosuch', '--', 'true']);
  assert.equal(badLimit.exitCode, 2);
  assert.match(badLimit.stderr, /"nosuch" is neither a host nor a role/);
});
