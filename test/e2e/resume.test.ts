/**
 * Resume and retry end to end on two lab hosts, with the real CLI and the demo playbook (host
 * identity, the haproxy service, a health check): an inventory var breaks the middle step on one
 * host; the resume command the failed run prints, run as printed, converges once the var is fixed;
 * broken again, `--retry-failed` reruns only that host from that step (the step's gate still
 * checks both hosts); then a full run changes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { bootLab, cli, CLI, events, onHost, ROOT, runEnd, tearDown, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
const STEP = 'haproxy demo service';

before(async () => {
  lab = await bootLab('res', ['alpha', 'beta'], [['flower'], ['flower']]);
});

after(async () => {
  await tearDown(lab);
});

const demo = () => ['-i', lab.inventoryFile, '--playbook', 'demo'];

/** Sets (or, with undefined, removes) beta's `haproxy_timeout_client` in the inventory file. */
async function betaTimeout(value: string | undefined): Promise<void> {
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { hosts: Array<{ name: string; vars?: Record<string, unknown> }> };
  const beta = doc.hosts.find((h) => h.name === 'beta');
  assert.ok(beta);
  if (value === undefined) delete beta.vars;
  else beta.vars = { haproxy_timeout_client: value };
  await writeFile(lab.inventoryFile, stringify(doc));
}

/** Runs a command line as a POSIX shell reads it, `airflow-ha` being this repository's bin/airflow-ha. */
async function shell(line: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const bin = path.join(lab.dir, 'bin');
  await mkdir(bin, { recursive: true });
  await symlink(CLI, path.join(bin, 'airflow-ha')).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const r = await execa('/bin/sh', ['-c', line], { reject: false, cwd: ROOT, env: { FORCE_COLOR: '0', PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin` } });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const stepsRun = (stdout: string) => events(stdout).filter((e) => e.type === 'step_start').map((e) => e['step']);

test('a run broken at its middle step is resumed with the command it prints; retried on the failed host only; then nothing changes', async () => {
  // 1. beta's timeout is not an HAProxy time: its config fails `haproxy -c`, alpha's passes.
  await betaTimeout('bogus');
  const broken = await cli(['apply', ...demo(), '--json', '--accept-new-host-keys']);
  assert.equal(broken.exitCode, 1, broken.stdout.slice(-3000) + broken.stderr);
  const end1 = runEnd(broken.stdout);
  assert.equal(end1.failedStep, STEP);
  assert.deepEqual(end1.failedHosts, ['beta']);
  assert.deepEqual(stepsRun(broken.stdout), ['host identity', STEP], 'the run stopped after the failed step');
  assert.equal(end1.resume, `airflow-ha apply -i ${lab.inventoryFile} --playbook demo --json --accept-new-host-keys --from-step '${STEP}'`);

  // 2. The cause removed, the printed command, run as printed, converges from that step.
  await betaTimeout(undefined);
  const resumed = await shell(end1.resume ?? '');
  assert.equal(resumed.exitCode, 0, resumed.stdout.slice(-3000) + resumed.stderr);
  assert.deepEqual(stepsRun(resumed.stdout), [STEP, 'health check'], 'host identity was skipped');
  const start2 = events(resumed.stdout).find((e) => e.type === 'run_start');
  assert.equal(start2?.['fromStep'], STEP);
  const end2 = runEnd(resumed.stdout);
  assert.deepEqual(end2.hosts.map((h) => [h.host, h.changed > 0]), [['alpha', false], ['beta', true]]);

  // 3. Broken again; the failure screen ends with the resume command.
  await betaTimeout('bogus');
  const plain = await cli(['apply', ...demo()]);
  assert.equal(plain.exitCode, 1, plain.stdout.slice(-3000) + plain.stderr);
  assert.match(plain.stdout, /task failed on beta: step "haproxy demo service", task "template \/etc\/haproxy\/haproxy\.cfg"/);
  assert.equal(plain.stdout.trimEnd().split('\n').at(-1), `resume: airflow-ha apply -i ${lab.inventoryFile} --playbook demo --from-step '${STEP}'`);

  // 4. Fixed with another valid value: --retry-failed reruns beta alone from that step. The step's
  // gate checks each host, so alpha is read for it, and nothing runs on alpha.
  await betaTimeout('31m');
  const retry = await cli(['apply', ...demo(), '--retry-failed', '--json']);
  assert.equal(retry.exitCode, 0, retry.stdout.slice(-3000) + retry.stderr);
  const ev = events(retry.stdout);
  assert.deepEqual([ev[0]?.type, ev[0]?.['kind'], ev[0]?.['hosts'], ev[0]?.['step']], ['retry', 'retry', ['beta'], STEP]);
  const start4 = ev.find((e) => e.type === 'run_start');
  // It retries the last failed run (step 3's), not the first one.
  assert.deepEqual([start4?.['hosts'], start4?.['fromStep'], start4?.['retryOf']], [['beta'], STEP, ev[0]?.['runId']]);
  assert.notEqual(ev[0]?.['runId'], end1.runId);
  const tasks = ev.filter((e) => e.type === 'task');
  assert.ok(tasks.length > 0 && tasks.every((e) => e['host'] === 'beta'), JSON.stringify(tasks.map((e) => e['host'])));
  assert.deepEqual(
    ev.filter((e) => e.type === 'gate' && e['status'] === 'ok').map((e) => e['host']).sort(),
    ['alpha', 'beta'],
    'the gate checked both hosts',
  );
  assert.deepEqual(stepsRun(retry.stdout), [STEP, 'health check']);
  const end4 = runEnd(retry.stdout);
  assert.deepEqual(end4.hosts.map((h) => h.host), ['beta']);
  assert.ok((end4.hosts[0]?.changed ?? 0) >= 2, 'the template and its reload');
  const cfg = await onHost(lab.inventoryFile, 'beta', 'grep -c "timeout client 31m" /etc/haproxy/haproxy.cfg; systemctl is-active haproxy');
  assert.equal(cfg.stdout, '1\nactive\n');

  // 5. The last run succeeded: nothing to retry.
  const again = await cli(['apply', ...demo(), '--retry-failed']);
  assert.equal(again.exitCode, 0, again.stderr);
  assert.match(again.stdout, /^nothing to retry: the last run of playbook demo \(.*\) succeeded$/);

  // 6. A full run: zero changes on both hosts.
  const full = await cli(['apply', ...demo(), '--json']);
  assert.equal(full.exitCode, 0, full.stderr);
  assert.deepEqual(runEnd(full.stdout).hosts.map((h) => [h.host, h.changed]), [['alpha', 0], ['beta', 0]]);
});
