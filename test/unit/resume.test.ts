/**
 * Step selection (`--list-steps`, `--from-step`, `--retry-failed`) on the real playbooks, the retry
 * decided from journal files written here, and the resume command line. Offline: nothing connects
 * (the CLI cases stop before any connection; their inventories' addresses are never dialled).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resumeCommand, stepsText } from '../../src/cli/resume.js';
import { InputError } from '../../src/core/errors.js';
import { loadInventory } from '../../src/inventory/load.js';
import { lastRun, retryDecision, type JournalEntry } from '../../src/run/journal.js';
import { listSteps, selectSteps, stepIndex } from '../../src/run/steps.js';
import { addWorkerPlaybook, drainWorkerPlaybook, forgetWorkerPlaybook, learnSteps } from '../../playbooks/add-worker.js';
import { playbooks } from '../../playbooks/index.js';
import { runMain } from '../helpers/cli.js';
import { ROOT } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';

const minimal = path.join(ROOT, 'test/fixtures/inventories/good/minimal.yaml');
const inv = async () => (await loadInventory(minimal)).inventory;

test('every playbook names each step once (a --from-step name is never ambiguous)', async () => {
  const lab = (await loadInventory(path.join(ROOT, 'inventory/lab.yaml'))).inventory;
  const all = [...Object.values(playbooks), addWorkerPlaybook(lab, 'worker1', playbooks.bootstrap.steps.filter((s) => !learnSteps.includes(s))), drainWorkerPlaybook('worker1', 60), forgetWorkerPlaybook('worker1')];
  for (const pb of all) {
    const names = pb.steps.map((s) => s.name);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], pb.name);
  }
});

test('the listing of the rabbitmq playbook: order, hosts, barrier, rolling, gate', async () => {
  const listing = listSteps(selectSteps(playbooks.rabbitmq, await inv(), { all: true }));
  assert.deepEqual(listing, [
    {
      index: 1,
      name: 'host identity',
      selector: { all: true },
      hosts: ['lb1', 'lb2', 'db1', 'db2', 'db3', 'mq1', 'mq2', 'mq3', 'worker1'],
      gateReads: [],
      barrier: true,
      serial: null,
      gate: null,
      runs: true,
    },
    {
      index: 2,
      name: 'rabbitmq nodes',
      selector: { roles: ['rabbitmq'] },
      hosts: ['mq1', 'mq2', 'mq3'],
      gateReads: [],
      barrier: true,
      serial: 1,
      gate: { name: 'every rabbitmq node running in one cluster', on: 'first', timeoutSec: 120, intervalSec: 3 },
      runs: true,
    },
  ]);
});

test('--limit and --from-step: the earlier steps and the steps without a host are listed as not run', async () => {
  const pb = playbooks.bootstrap;
  const from = stepIndex(pb, 'rabbitmq nodes');
  const listing = listSteps(selectSteps(pb, await inv(), { roles: ['rabbitmq', 'worker'] }, { step: from }));
  assert.equal(listing.length, pb.steps.length);
  assert.deepEqual(
    listing.filter((s) => s.runs).map((s) => [s.name, s.hosts.join(',')]),
    [
      ['rabbitmq nodes', 'mq1,mq2,mq3'],
      ['dags: nfs clients', 'worker1'],
      ['dags: python files compile', 'worker1'],
      ['dags: release', 'worker1'],
      ['dags: git deploy key', 'worker1'],
      ['airflow install', 'worker1'],
      ['airflow config', 'worker1'],
      ['airflow services', 'worker1'],
      ['airflow workers', 'worker1'],
      ['ssh target: workers', 'worker1'],
    ],
  );
  const text = stepsText(pb, listing, from);
  assert.match(text, /^playbook bootstrap: 33 steps, 10 to run, on 4 host\(s\); every step ends with a barrier/);
  assert.match(text, /^ {2}1 {2}base system +all hosts: mq1, mq2, mq3, worker1 \| not run: before "rabbitmq nodes"$/m);
  assert.match(text, /^ 15 {2}rabbitmq nodes +role rabbitmq: mq1, mq2, mq3 \| rolling, 1 host at a time \| gate on the first host \(timeout 120 s\): every rabbitmq node running in one cluster$/m);
  assert.match(text, /^ 22 {2}ftp +role ftp: no host \| not run: no host$/m);
});

test('a retry runs tasks on the retried hosts only; each gate keeps the hosts it checks in a full run', async () => {
  const pb = playbooks['etcd-patroni'];
  const selected = selectSteps(pb, await inv(), { all: true }, { step: stepIndex(pb, 'patroni leader'), hosts: ['db2'] });
  const byName = new Map(listSteps(selected).map((s) => [s.name, s]));
  // Gate on the first host: db1 is read, not retried.
  assert.deepEqual([byName.get('patroni leader')?.hosts, byName.get('patroni leader')?.gateReads], [['db2'], ['db1']]);
  // Gate on each host: every other node is read.
  assert.deepEqual([byName.get('patroni replicas')?.hosts, byName.get('patroni replicas')?.gateReads], [['db2'], ['db1', 'db3']]);
  // No gate: nothing else is read.
  assert.deepEqual(byName.get('airflow database')?.gateReads, []);
  assert.equal(byName.get('etcd')?.runs, false);
  assert.deepEqual(
    selected.find((s) => s.step.name === 'patroni replicas')?.gateHosts.map((h) => h.name),
    ['db1', 'db2', 'db3'],
  );
});

test('an unknown --from-step is bad input (exit 2) naming every step in order', () => {
  assert.throws(
    () => stepIndex(playbooks.demo, 'haproxy'),
    (e: unknown) =>
      e instanceof InputError &&
      e.exitCode === 2 &&
      e.message === '--from-step: playbook demo has no step "haproxy"; its steps, in order: "host identity", "haproxy demo service", "health check"',
  );
  assert.equal(stepIndex(playbooks.demo, 'health check'), 2);
});

/** The events of a demo run as the journal holds them, failing at `failedStep` on `failed` hosts (none: it succeeded). */
function demoRun(runId: string, opts: { failed?: string[]; failedStep?: string; check?: boolean; end?: boolean; oldFormat?: boolean; exitCode?: number } = {}): JournalEntry[] {
  const hosts = ['lb1', 'lb2'];
  const events: JournalEntry[] = [
    { runId, type: 'run_start', time: '2025-03-01T10:00:00.000Z', command: 'airflow-ha apply', playbook: 'demo', check: Boolean(opts.check), hosts, limit: hosts },
    { runId, type: 'step_start', step: 'host identity', hosts },
  ];
  const step = opts.failedStep;
  if (step) {
    events.push({ runId, type: 'step_start', step, hosts });
    for (const h of opts.failed ?? []) events.push({ runId, type: 'task', step, host: h, task: 'template /etc/haproxy/haproxy.cfg', status: 'failed', changes: [], seconds: 1, error: 'exit 1' });
  }
  if (opts.end === false) return events;
  const failed = Boolean(opts.failed?.length) || opts.exitCode !== undefined;
  events.push({
    runId,
    type: 'run_end',
    time: '2025-03-01T10:01:00.000Z',
    ok: !failed,
    exitCode: opts.exitCode ?? (failed ? 1 : 0),
    seconds: 60,
    hosts: hosts.map((h) => ({ host: h, ok: 1, changed: 0, failed: opts.failed?.includes(h) ? 1 : 0, seconds: 1 })),
    ...(failed ? { error: 'task failed on lb2: step "haproxy demo service"\n  command: ...' } : {}),
    ...(step && !opts.oldFormat ? { failedStep: step, failedHosts: opts.failed ?? [], resume: `airflow-ha apply -i site.yaml --playbook demo --from-step '${step}'` } : {}),
  });
  return events;
}

async function journalDir(...runs: Array<JournalEntry[] | string>): Promise<string> {
  const dir = tempDir('ah-journal-');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'journal.jsonl'), runs.map((r) => (typeof r === 'string' ? r : r.map((e) => JSON.stringify(e)).join('\n'))).join('\n') + '\n');
  return dir;
}

test('--retry-failed reads the last run of the playbook that changed hosts: the failed hosts, from their step', async () => {
  const inventory = await inv();
  const pb = playbooks.demo;
  // The failed demo run, then a plan of it (check mode) and a run of another playbook, interleaved.
  const other = demoRun('other').map((e) => (e.type === 'run_start' ? { ...e, playbook: 'base' } : e));
  const dir = await journalDir(demoRun('old-ok'), demoRun('r1', { failedStep: 'haproxy demo service', failed: ['lb2'] }), other, demoRun('plan', { check: true }), '{"runId":"cut", "type":');
  try {
    const run = lastRun(dir, 'demo');
    assert.equal(run?.start.runId, 'r1');
    const d = retryDecision(run, pb, inventory, { all: true }, 'journal.jsonl');
    assert.deepEqual(d, {
      kind: 'retry',
      runId: 'r1',
      step: 'haproxy demo service',
      index: 1,
      hosts: ['lb2'],
      limit: ['lb1', 'lb2'],
      behind: ['lb1'],
      resume: "airflow-ha apply -i site.yaml --playbook demo --from-step 'haproxy demo service'",
      message: 'retrying lb2 from step "haproxy demo service": it failed there in run r1 (started 2025-03-01T10:00:00.000Z)',
    });
    // This run's --limit narrows it: lb2 left out, nothing to retry.
    const out = retryDecision(run, pb, inventory, { names: ['lb1'] }, 'journal.jsonl');
    assert.equal(out.kind, 'none');
    assert.match(out.message, /the hosts that failed in .* at step "haproxy demo service" \(lb2\) are not in this inventory or --limit/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('--retry-failed: a journal without failedStep (older runs) is read from the failed events', async () => {
  const dir = await journalDir(demoRun('r1', { failedStep: 'health check', failed: ['lb1', 'lb2'], oldFormat: true }));
  try {
    const d = retryDecision(lastRun(dir, 'demo'), playbooks.demo, await inv(), { all: true }, 'j');
    assert.equal(d.kind, 'retry');
    assert.deepEqual(d.kind === 'retry' ? [d.step, d.index, d.hosts, d.behind, d.resume] : [], ['health check', 2, ['lb1', 'lb2'], [], undefined]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('--retry-failed: nothing to retry after a success, without a run, or a run that stopped before its first step; a killed run is bad input', async () => {
  const inventory = await inv();
  const pb = playbooks.demo;
  const decide = async (...runs: JournalEntry[][]) => {
    const dir = await journalDir(...runs);
    try {
      return retryDecision(lastRun(dir, 'demo'), pb, inventory, { all: true }, 'state/journal.jsonl');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const ok = await decide(demoRun('r1', { failedStep: 'health check', failed: ['lb1'] }), demoRun('r2'));
  assert.deepEqual(ok, { kind: 'none', message: 'nothing to retry: the last run of playbook demo (r2, started 2025-03-01T10:00:00.000Z) succeeded' });
  assert.deepEqual(retryDecision(lastRun(tempDir('ah-none-'), 'demo'), pb, inventory, { all: true }, 'state/journal.jsonl'), {
    kind: 'none',
    message: 'nothing to retry: state/journal.jsonl holds no run of playbook demo that changed hosts',
  });
  const unreachable = await decide(demoRun('r3', { exitCode: 3 }));
  assert.equal(unreachable.kind, 'none');
  assert.match(unreachable.message, /failed before its first step \(exit 3: task failed on lb2: step "haproxy demo service"\); run it again without --retry-failed$/);
  const dir = await journalDir(demoRun('r4', { failedStep: 'haproxy demo service', end: false }));
  try {
    assert.throws(
      () => retryDecision(lastRun(dir, 'demo'), pb, inventory, { all: true }, 'state/journal.jsonl'),
      (e: unknown) => e instanceof InputError && /has no end in state\/journal\.jsonl .*resume it on every host with --from-step "haproxy demo service"/.test(e.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the resume command: the same words, --from-step replaced, each word quoted so that a POSIX shell gives them back', async () => {
  const words = ['apply', '-i', 'my site.yaml', '--playbook', 'airflow', '--limit', 'worker1,sql2', '--from-step=airflow install', '--json'];
  const step = "airflow db migrate + admin user's";
  const cmd = resumeCommand(words, step);
  assert.equal(cmd, `airflow-ha apply -i 'my site.yaml' --playbook airflow --limit worker1,sql2 --json --from-step 'airflow db migrate + admin user'\\''s'`);
  assert.equal(resumeCommand(['bootstrap', '-i', 'x.yaml', '--from-step', 'etcd'], 'patroni leader'), "airflow-ha bootstrap -i x.yaml --from-step 'patroni leader'");
  // A retry is resumed by the same command: it reads the journal again.
  assert.equal(resumeCommand(['apply', '-i', 'x.yaml', '--retry-failed'], 'etcd'), 'airflow-ha apply -i x.yaml --retry-failed');
  // What the shell makes of it: exactly these words.
  const { stdout } = await promisify(execFile)('/bin/sh', ['-c', `set -- ${cmd}; printf '%s\\n' "$@"`]);
  assert.deepEqual(stdout.split('\n').slice(0, -1), ['airflow-ha', ...words.filter((w) => !w.startsWith('--from-step')), '--from-step', step]);
});

test('the CLI: --list-steps and a bad --from-step connect nowhere and write nothing; --retry-failed says why there is nothing to retry', async () => {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    const file = path.join(dir, 'site.yaml');
    await copyFile(minimal, file);
    const list = await runMain(['apply', '-i', file, '--playbook', 'demo', '--list-steps', '--limit', 'mq1']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(
      list.stdout,
      [
        'playbook demo: 3 steps, 3 to run, on 1 host(s); every step ends with a barrier (the next starts once all its hosts are done)',
        '  1  host identity         all hosts: mq1',
        '  2  haproxy demo service  all hosts: mq1 | gate on each host (timeout 30 s): haproxy stats port open on every host',
        '  3  health check          all hosts: mq1',
        '',
      ].join('\n'),
    );
    const json = await runMain(['bootstrap', '-i', file, '--list-steps', '--json', '--from-step', 'airflow services']);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { playbook: string; steps: Array<{ name: string; runs: boolean }> };
    assert.equal(doc.playbook, 'bootstrap');
    assert.deepEqual(doc.steps.filter((s) => s.runs).map((s) => s.name), ['airflow services', 'airflow webserver health', 'airflow workers', 'ssh target: workers']);
    const bad = await runMain(['plan', '-i', file, '--playbook', 'rabbitmq', '--from-step', 'rabbitmq']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error: --from-step: playbook rabbitmq has no step "rabbitmq"; its steps, in order: "host identity", "rabbitmq nodes"/);
    const both = await runMain(['apply', '-i', file, '--from-step', 'etcd', '--retry-failed']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /'--retry-failed' cannot be used with option '--from-step <name>'/);
    // Nothing connected, so nothing was written: no state folder (no secrets, no journal).
    assert.deepEqual(await readdir(dir), ['site.yaml']);

    const none = await runMain(['apply', '-i', file, '--playbook', 'demo', '--retry-failed', '--json']);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(JSON.parse(none.stdout).kind, 'none');
    await mkdir(path.join(dir, 'site.state'));
    const journal = path.join(dir, 'site.state', 'journal.jsonl');
    await writeFile(journal, `${demoRun('r1', { failedStep: 'health check', failed: ['lb1'] }).map((e) => JSON.stringify(e)).join('\n')}\n`);
    const plan = await runMain(['apply', '-i', file, '--playbook', 'demo', '--retry-failed', '--list-steps']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^retrying lb1 from step "health check": it failed there in run r1/);
    assert.match(plan.stdout, /^ {2}2 {2}haproxy demo service +all hosts: lb1 \| gate .* \| not run: before "health check"$/m);
    assert.match(plan.stdout, /^ {2}3 {2}health check +all hosts: lb1$/m);
    await writeFile(journal, `${demoRun('r2').map((e) => JSON.stringify(e)).join('\n')}\n`, { flag: 'a' });
    const done = await runMain(['apply', '-i', file, '--playbook', 'demo', '--retry-failed']);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, 'nothing to retry: the last run of playbook demo (r2, started 2025-03-01T10:00:00.000Z) succeeded\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
