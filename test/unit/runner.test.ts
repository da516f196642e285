import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { sh } from '../../src/core/cmd.js';
import { ExitCode, TaskFailedError } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import type { ClusterSecrets } from '../../src/inventory/secrets.js';
import { Inventory } from '../../src/inventory/schema.js';
import { eventLines, colours } from '../../src/cli/output.js';
import { fanOut, type Reporter, type RunEvent } from '../../src/run/events.js';
import { runPlaybook, type RunOptions } from '../../src/run/execute.js';
import { journalReporter, lastRun, retryDecision } from '../../src/run/journal.js';
import { acquireLockCmd, releaseLockCmd, LOCK_DIR } from '../../src/run/lock.js';
import type { Playbook } from '../../src/run/playbook.js';
import { command, waitFor } from '../../src/tasks/command.js';
import { file } from '../../src/tasks/file.js';
import type { Handler, Task } from '../../src/tasks/task.js';
import { LocalConnection, LocalTransport, tempDir } from '../helpers/local.js';

const inventory = Inventory.parse({
  cluster: { name: 'unit', network: '10.9.0.0/24' },
  hosts: [
    { name: 'h1', address: '10.9.0.11', roles: ['etcd'] },
    { name: 'h2', address: '10.9.0.12', roles: ['etcd'] },
    { name: 'h3', address: '10.9.0.13', roles: ['worker'], queues: ['default'] },
  ],
});

const secret = new Secret('s3cr3t-value-for-tests');
const secrets = { haproxyStats: secret } as unknown as ClusterSecrets;

// The lock directory's parent is created on "the first host" (this machine): remove it if empty.
after(async () => {
  await new LocalConnection().exec(sh`rmdir ${path.dirname(LOCK_DIR)} 2>/dev/null || true`);
});

function recorder(): Reporter & { events: RunEvent[] } {
  const events: RunEvent[] = [];
  return { events, emit: (e) => events.push(e) };
}

/** A playbook writing files under `dir/<host>/`, a handler that appends to a log, and a gate. */
function playbook(dir: string, version: string, opts: { failOn?: string; serial?: number } = {}): Playbook {
  const handler: Handler = {
    id: 'log',
    name: 'record restart',
    ops: [{ kind: 'exec', cmd: sh`echo restart >> ${path.join(dir, 'handler.log')}` }],
  };
  return {
    name: 'unit',
    description: 'test',
    requiredRoles: [],
    steps: [
      {
        name: 'config',
        hosts: { all: true },
        serial: opts.serial,
        tasks: ({ host }) => [
          command({ name: 'mkdir', cmd: sh`mkdir -p ${path.join(dir, host.name)}`, creates: path.join(dir, host.name) }),
          file({ path: path.join(dir, host.name, 'app.conf'), content: `version=${version}\npassword=${secret.reveal()}\n`, notify: [handler] }),
          file({ path: path.join(dir, host.name, 'other.conf'), content: 'static\n', notify: [handler] }),
          ...(opts.failOn === host.name
            ? [command({ name: 'break', cmd: sh`echo ${'boom: '}${secret} >&2; exit 7` })]
            : []),
        ],
        gate: { name: 'app.conf everywhere', on: 'first', check: () => sh`test -f ${path.join(dir, 'h1', 'app.conf')}`, timeoutSec: 5 },
      },
      {
        name: 'etcd only',
        hosts: { roles: ['etcd'] },
        tasks: ({ host }) => [file({ path: path.join(dir, host.name, 'etcd.conf'), content: 'etcd\n' })],
      },
    ],
  };
}

function options(over: Partial<RunOptions> & Pick<RunOptions, 'playbook'>): RunOptions {
  return {
    inventory,
    secrets,
    transport: new LocalTransport(),
    reporter: recorder(),
    check: false,
    limit: { all: true },
    command: 'airflow-ha apply (test)',
    operator: 'tester@unit',
    ...over,
  };
}

async function withLockFree<T>(fn: () => Promise<T>): Promise<T> {
  // The run lock lives at a fixed path on the "first host", which here is this machine.
  await new LocalConnection().exec(releaseLockCmd());
  try {
    return await fn();
  } finally {
    await new LocalConnection().exec(releaseLockCmd());
  }
}

test('apply changes things, a second apply reports zero changes and runs no handler', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    try {
      const r1 = recorder();
      const first = await runPlaybook(options({ playbook: playbook(dir, '1'), reporter: r1 }));
      assert.equal(first.exitCode, ExitCode.ok);
      // h1,h2,h3: mkdir + 2 files + handler = 4 changes each; etcd step: h1,h2 one file each.
      assert.equal(first.changed, 3 * 4 + 2);
      assert.equal((await readFile(path.join(dir, 'handler.log'), 'utf8')).split('\n').filter(Boolean).length, 3, 'handler once per host');
      assert.ok(r1.events.some((e) => e.type === 'gate' && e.status === 'ok'));
      const r2 = recorder();
      const second = await runPlaybook(options({ playbook: playbook(dir, '1'), reporter: r2 }));
      assert.equal(second.exitCode, ExitCode.ok);
      assert.equal(second.changed, 0);
      assert.ok(r2.events.every((e) => e.type !== 'handler'));
      assert.equal((await readFile(path.join(dir, 'handler.log'), 'utf8')).split('\n').filter(Boolean).length, 3);
      // Every task was reported ok, and the lock is released at the end.
      assert.equal(r2.events.filter((e) => e.type === 'task' && e.status === 'ok').length, 3 * 3 + 2);
      assert.equal((await new LocalConnection().exec(sh`test -d ${LOCK_DIR}`)).code, 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('check mode reports the diff and changes nothing; a file holding a secret shows no line, so no old value leaks', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    try {
      await runPlaybook(options({ playbook: playbook(dir, '1') }));
      // A previous password on the host, which masking (it knows the current secrets only) cannot catch.
      const oldValue = 'old-password-nobody-knows-now';
      const handEdited = `version=hand-edited\npassword=${oldValue}\n`;
      await writeFile(path.join(dir, 'h2', 'app.conf'), handEdited);
      await writeFile(path.join(dir, 'h2', 'other.conf'), 'hand-edited\n');
      const r = recorder();
      const res = await runPlaybook(options({ playbook: playbook(dir, '1'), reporter: r, check: true }));
      assert.equal(res.exitCode, ExitCode.ok);
      const changed = r.events.filter((e): e is Extract<RunEvent, { type: 'task' }> => e.type === 'task' && e.status === 'changed');
      assert.deepEqual(changed.map((e) => [e.host, e.task]), [['h2', `file ${dir}/h2/app.conf`], ['h2', `file ${dir}/h2/other.conf`]]);
      // The file without secrets: a plain diff.
      assert.match(changed[1]?.diff ?? '', /^-hand-edited$/m);
      assert.match(changed[1]?.diff ?? '', /^\+static$/m);
      // The file with a secret: no line of either version.
      assert.equal(changed[0]?.diff, `${dir}/h2/app.conf: content hidden: holds secrets\n`);
      const all = JSON.stringify(r.events);
      assert.ok(!all.includes(secret.reveal()), 'no event may carry the secret');
      assert.ok(!all.includes(oldValue), 'no event may carry the old value');
      assert.equal(await readFile(path.join(dir, 'h2', 'app.conf'), 'utf8'), handEdited);
      assert.ok(r.events.some((e) => e.type === 'handler'), 'check mode says which handler would run');
      assert.ok(r.events.every((e) => e.type !== 'gate'), 'gates do not run in check mode');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('a failure names host, step, task, command, exit code and stderr (masked), and stops before the next step', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    try {
      const r = recorder();
      const res = await runPlaybook(options({ playbook: playbook(dir, '1', { failOn: 'h3' }), reporter: r }));
      assert.equal(res.exitCode, ExitCode.taskFailed);
      const err = res.error as TaskFailedError;
      assert.ok(err instanceof TaskFailedError);
      assert.equal(err.host, 'h3');
      assert.equal(err.step, 'config');
      assert.equal(err.task, 'break');
      assert.equal(err.commandExit, 7);
      assert.equal(err.command, "echo 'boom: '*** >&2; exit 7");
      assert.match(err.stderrTail, /boom: \*\*\*/);
      assert.ok(!err.message.includes(secret.reveal()));
      assert.ok(!r.events.some((e) => e.type === 'step_start' && e.step === 'etcd only'), 'the next step must not start');
      const end = r.events.at(-1) as Extract<RunEvent, { type: 'run_end' }>;
      assert.equal(end.type, 'run_end');
      assert.deepEqual(end.hosts.find((h) => h.host === 'h3')?.failed, 1);
      // Other hosts of the failing step finished their work (a barrier, not a kill).
      assert.equal(await readFile(path.join(dir, 'h1', 'other.conf'), 'utf8'), 'static\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('serial batches: a failed batch stops the rolling step; later hosts keep their old state', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    try {
      const r = recorder();
      const res = await runPlaybook(options({ playbook: playbook(dir, '1', { failOn: 'h1', serial: 1 }), reporter: r }));
      assert.equal(res.exitCode, ExitCode.taskFailed);
      const end = r.events.find((e) => e.type === 'step_end') as Extract<RunEvent, { type: 'step_end' }>;
      assert.deepEqual(end.skipped, ['h2', 'h3']);
      await assert.rejects(readFile(path.join(dir, 'h2', 'app.conf')));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('an unreachable host stops the run before anything changes (exit 3, host and address named)', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    const res = await runPlaybook(options({ playbook: playbook(dir, '1'), transport: new LocalTransport(new Set(['h2'])) }));
    assert.equal(res.exitCode, ExitCode.unreachable);
    assert.match(res.error?.message ?? '', /host h2 \(203\.0\.113\.1\) unreachable: connect ECONNREFUSED/);
    await assert.rejects(readFile(path.join(dir, 'h1', 'app.conf')), 'nothing may change on the reachable hosts');
    // --limit excluding the down host lets the run proceed.
    const limited = await runPlaybook(options({ playbook: playbook(dir, '1'), transport: new LocalTransport(new Set(['h2'])), limit: { names: ['h1', 'h3'] } }));
    assert.equal(limited.exitCode, ExitCode.ok);
    await rm(dir, { recursive: true, force: true });
  });
});

test('a held lock refuses the run with exit 4 and names the holder; plan still works', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    const conn = new LocalConnection();
    const taken = await conn.exec(acquireLockCmd({ holder: 'alice@laptop', time: '2026-11-21T05:00:00Z', command: 'airflow-ha apply', pid: 42 }));
    assert.equal(taken.code, 0);
    const res = await runPlaybook(options({ playbook: playbook(dir, '1') }));
    assert.equal(res.exitCode, ExitCode.lockHeld);
    assert.match(res.error?.message ?? '', /held: alice@laptop since 2026-11-21T05:00:00Z \(pid 42\): airflow-ha apply/);
    await assert.rejects(readFile(path.join(dir, 'h1', 'app.conf')));
    const plan = await runPlaybook(options({ playbook: playbook(dir, '1'), check: true }));
    assert.equal(plan.exitCode, ExitCode.ok);
    // Our own run does not release somebody else's lock.
    assert.equal((await conn.exec(sh`test -d ${LOCK_DIR}`)).code, 0);
    await rm(dir, { recursive: true, force: true });
  });
});

test('a failing gate fails the step with the gate named', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    const pb: Playbook = {
      name: 'g',
      description: '',
      requiredRoles: [],
      steps: [
        { name: 'wait', hosts: { names: ['h1'] }, tasks: () => [], gate: { name: 'never', on: 'each', check: () => sh`false`, timeoutSec: 1, intervalSec: 0.2 } },
        { name: 'after', hosts: { all: true }, tasks: () => [command({ name: 'x', cmd: sh`true` })] },
      ],
    };
    const r = recorder();
    const res = await runPlaybook(options({ playbook: pb, reporter: r }));
    assert.equal(res.exitCode, ExitCode.taskFailed);
    assert.equal((res.error as TaskFailedError).task, 'gate: never');
    assert.match((res.error as TaskFailedError).stderrTail, /timed out after 1 s/);
    assert.ok(!r.events.some((e) => e.type === 'step_start' && e.step === 'after'));
    await rm(dir, { recursive: true, force: true });
  });
});

test('a task that cannot be built (a template error) fails before any command runs, and says so', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    const pb: Playbook = {
      name: 'b',
      description: '',
      requiredRoles: [],
      steps: [
        {
          name: 'config',
          hosts: { names: ['h1'] },
          tasks: () => {
            throw new Error('template x.njk: [Line 3, Column 7] attempted to output null or undefined value');
          },
        },
      ],
    };
    const res = await runPlaybook(options({ playbook: pb }));
    assert.equal(res.exitCode, ExitCode.taskFailed);
    const msg = res.error?.message ?? '';
    assert.match(msg, /^task failed on h1: step "config", task "\(build tasks\)" \(before any command ran\)\n {4}template x\.njk: \[Line 3, Column 7\]/);
    assert.doesNotMatch(msg, /connection lost/);
    await rm(dir, { recursive: true, force: true });
  });
});

/** A transport to this machine that records when each command of each host started and ended (ms). */
class TimedTransport extends LocalTransport {
  readonly log: { host: string; text: string; start: number; end: number }[] = [];
  override async connect(host: string) {
    const conn = await super.connect(host);
    return {
      host,
      exec: async (cmd: Parameters<typeof conn.exec>[0], o?: Parameters<typeof conn.exec>[1]) => {
        const start = performance.now();
        const res = await conn.exec(cmd, o);
        this.log.push({ host, text: cmd.toString(), start, end: performance.now() });
        return res;
      },
      put: conn.put.bind(conn),
    };
  }
  /** The commands whose text contains `mark`, in start order. */
  calls(mark: string) {
    return this.log.filter((c) => c.text.includes(mark)).sort((a, b) => a.start - b.start);
  }
}

/** A playbook of one rolling step (serial: 1) on every host, with the tasks `tasks` gives each host. */
function rolling(tasks: (host: string) => Task[]): Playbook {
  return { name: 'unit', description: 'test', requiredRoles: [], steps: [{ name: 'rolling', hosts: { all: true }, serial: 1, tasks: ({ host }) => tasks(host.name) }] };
}

/** A rolling step whose one task per host is guarded by a slow fact (0.3 s). */
function rollingPlaybook(dir: string, guard: (host: string) => ReturnType<typeof sh>): Playbook {
  return rolling((host) => [
    command({
      name: 'mark',
      cmd: sh`sleep 0.3; touch ${path.join(dir, `${host}.done`)}; : change-op`,
      unless: sh`: slow-fact; sleep 0.3; ${guard(host)}`,
    }),
  ]);
}

const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }) => a.start < b.end && b.start < a.end;

test('a rolling step whose hosts have nothing to change plans them in parallel, one fact round trip each', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    const transport = new TimedTransport();
    const r = recorder();
    const res = await runPlaybook(options({ playbook: rollingPlaybook(dir, () => sh`true`), transport, reporter: r }));
    assert.equal(res.exitCode, ExitCode.ok);
    assert.equal(res.changed, 0);
    const facts = transport.calls('slow-fact');
    assert.deepEqual(facts.map((c) => c.host).sort(), ['h1', 'h2', 'h3'], 'one fact round trip per host');
    assert.ok(overlaps(facts[0]!, facts[2]!), 'the three hosts were planned at the same time');
    assert.equal(r.events.filter((e) => e.type === 'task' && e.status === 'ok').length, 3);
  });
});

test('a rolling step still changes one host at a time, and a host after a change plans again at its turn', async () => {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  await withLockFree(async () => {
    try {
      const transport = new TimedTransport();
      // h1 has nothing to do; h2 and h3 have; h3's guard holds until h2 changed something.
      const guard = (host: string) =>
        host === 'h1' ? sh`true` : host === 'h2' ? sh`false` : sh`test ! -e ${path.join(dir, 'h2.done')}`;
      const res = await runPlaybook(options({ playbook: rollingPlaybook(dir, guard), transport }));
      assert.equal(res.exitCode, ExitCode.ok);
      assert.deepEqual(res.hosts.map((h) => [h.host, h.changed]), [['h1', 0], ['h2', 1], ['h3', 1]]);
      const changes = transport.calls('change-op');
      assert.deepEqual(changes.map((c) => c.host), ['h2', 'h3']);
      assert.ok(!overlaps(changes[0]!, changes[1]!), 'h3 changed only after h2 finished');
      // h3 was planned twice: with the others (nothing to do yet), then at its turn, after h2's change.
      assert.equal(transport.calls('slow-fact').filter((c) => c.host === 'h3').length, 2);
      await readFile(path.join(dir, 'h3.done'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('a rolling step: a host with nothing to change whose wait fails stops the roll before any change', async () => {
  const transport = new TimedTransport();
  const r = recorder();
  const pb = rolling((host) => (host === 'h1' ? [waitFor({ cmd: sh`false`, timeoutSec: 1 })] : [command({ name: 'change', cmd: sh`: change-op` })]));
  await withLockFree(async () => {
    const res = await runPlaybook(options({ playbook: pb, transport, reporter: r }));
    assert.equal(res.exitCode, ExitCode.taskFailed);
    assert.equal(res.error?.message.includes('h1'), true);
    const end = r.events.find((e) => e.type === 'step_end') as Extract<RunEvent, { type: 'step_end' }>;
    assert.deepEqual(end.skipped, ['h2', 'h3']);
    assert.deepEqual(transport.calls('change-op'), []);
  });
});

test('a failed run names the failed step, its failed hosts and the resume command in run_end, and as the last line of the failure screen', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    try {
      const r = recorder();
      const res = await runPlaybook(options({ playbook: playbook(dir, '1', { failOn: 'h3' }), reporter: r, resumeCommand: (step) => `airflow-ha apply --from-step ${step} ${secret.reveal()}` }));
      assert.equal(res.exitCode, ExitCode.taskFailed);
      const end = r.events.at(-1) as Extract<RunEvent, { type: 'run_end' }>;
      assert.equal(end.failedStep, 'config');
      assert.deepEqual(end.failedHosts, ['h3']);
      assert.equal(end.resume, 'airflow-ha apply --from-step config ***', 'the command is masked like every other field');
      const lines = eventLines(end, { diff: false, verbose: false, check: false }, colours(false));
      assert.equal(lines.at(-1), 'resume: airflow-ha apply --from-step config ***');
      assert.match(lines.at(-2) ?? '', /^FAILED \(exit 1\)/);
      // A run that stops before its first step (here: the lock) names no step to resume from.
      const held = await new LocalConnection().exec(acquireLockCmd({ holder: 'other@x', time: 'now', command: 'apply', pid: 1 }));
      assert.equal(held.code, 0);
      const r2 = recorder();
      await runPlaybook(options({ playbook: playbook(dir, '1'), reporter: r2, resumeCommand: () => 'never' }));
      const end2 = r2.events.at(-1) as Extract<RunEvent, { type: 'run_end' }>;
      assert.equal(end2.exitCode, ExitCode.lockHeld);
      assert.equal(end2.failedStep, undefined);
      assert.equal(end2.resume, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('start at a step: the steps before it do not run, and hosts only they target are not connected', async () => {
  const dir = tempDir();
  await withLockFree(async () => {
    try {
      await mkdir(path.join(dir, 'h1'), { recursive: true });
      await mkdir(path.join(dir, 'h2'), { recursive: true });
      const r = recorder();
      const transport = new LocalTransport();
      const res = await runPlaybook(options({ playbook: playbook(dir, '1'), reporter: r, transport, start: { step: 1 } }));
      assert.equal(res.exitCode, ExitCode.ok, res.error?.message);
      const start = r.events[0] as Extract<RunEvent, { type: 'run_start' }>;
      assert.equal(start.fromStep, 'etcd only');
      assert.deepEqual(start.hosts, ['h1', 'h2']);
      assert.deepEqual(start.limit, ['h1', 'h2', 'h3']);
      assert.deepEqual(r.events.filter((e) => e.type === 'step_start').map((e) => (e as { step: string }).step), ['etcd only']);
      assert.equal(await readFile(path.join(dir, 'h1', 'etcd.conf'), 'utf8'), 'etcd\n');
      await assert.rejects(readFile(path.join(dir, 'h1', 'app.conf')), 'the config step did not run');
      assert.deepEqual([...transport.conns.keys()].sort(), ['h1', 'h2']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('a retry from the journal runs tasks only on the failed host, from its step; the gate still checks the first host, read but not changed', async () => {
  const dir = tempDir();
  const stateDir = tempDir('ah-state-');
  await withLockFree(async () => {
    try {
      const failing = playbook(dir, '1', { failOn: 'h3' });
      const r1 = recorder();
      const first = await runPlaybook(options({ playbook: failing, reporter: fanOut(r1, journalReporter(stateDir, 'run-1')), runId: 'run-1' }));
      assert.equal(first.exitCode, ExitCode.taskFailed);
      const decision = retryDecision(lastRun(stateDir, 'unit'), failing, inventory, { all: true }, 'journal.jsonl');
      assert.equal(decision.kind, 'retry');
      if (decision.kind !== 'retry') return;
      assert.deepEqual([decision.step, decision.index, decision.hosts, decision.limit], ['config', 0, ['h3'], ['h1', 'h2', 'h3']]);
      assert.deepEqual(decision.behind, ['h1', 'h2'], 'the etcd step never ran on h1 and h2 in that run');
      // The cause removed (the playbook no longer breaks h3): h1's config is hand-edited, so a
      // task run on h1 would show as a change; the retry must leave it alone.
      await writeFile(path.join(dir, 'h1', 'other.conf'), 'hand-edited\n');
      const r2 = recorder();
      const transport = new LocalTransport();
      const retry = await runPlaybook(
        options({ playbook: playbook(dir, '1'), reporter: r2, transport, limit: { names: decision.limit }, start: { step: decision.index, hosts: decision.hosts }, retryOf: decision.runId }),
      );
      assert.equal(retry.exitCode, ExitCode.ok, retry.error?.message);
      const tasks = r2.events.filter((e): e is Extract<RunEvent, { type: 'task' }> => e.type === 'task');
      assert.ok(tasks.length > 0 && tasks.every((e) => e.host === 'h3'), JSON.stringify(tasks.map((e) => e.host)));
      assert.equal(await readFile(path.join(dir, 'h1', 'other.conf'), 'utf8'), 'hand-edited\n');
      const gates = r2.events.filter((e): e is Extract<RunEvent, { type: 'gate' }> => e.type === 'gate');
      assert.deepEqual(gates.map((g) => [g.host, g.status]), [['h1', 'waiting'], ['h1', 'ok']], 'the gate on the first host of the step, as in a full run');
      // h1: the lock and the gate; h2: nothing to do here (its etcd step needs no h3); h3: retried.
      assert.deepEqual([...transport.conns.keys()].sort(), ['h1', 'h3']);
      const start = r2.events[0] as Extract<RunEvent, { type: 'run_start' }>;
      assert.deepEqual([start.hosts, start.retryOf, start.fromStep], [['h3'], 'run-1', undefined]);
      const end = r2.events.at(-1) as Extract<RunEvent, { type: 'run_end' }>;
      assert.deepEqual(end.hosts.map((h) => h.host), ['h3']);
      // The retry is journaled too: it succeeded, so a second retry has nothing to do.
      await runPlaybook(options({ playbook: playbook(dir, '1'), reporter: journalReporter(stateDir, 'run-2'), runId: 'run-2', start: { step: 0, hosts: ['h3'] } }));
      const again = retryDecision(lastRun(stateDir, 'unit'), failing, inventory, { all: true }, 'journal.jsonl');
      assert.equal(again.kind, 'none');
      assert.match(again.message, /^nothing to retry: the last run of playbook unit \(run-2, started .*\) succeeded$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
