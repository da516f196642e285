/**
 * The pure half of `airflow-ha upgrade`: version jumps, the DAG scan of what Airflow 3.0 removed,
 * the in-place version edit of the inventory, and the steps of the upgrade and rollback playbooks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { venvPruneTask, venvSwitchTask } from '../../src/components/airflow.js';
import { FactSet } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import type { Task } from '../../src/tasks/task.js';
import { seedInventory } from '../helpers/golden.js';
import { checkRollbackPath, checkUpgradePath, compareVersions, formatFindings, scanDagFile, scanDags } from '../../src/components/airflow-upgrade.js';
import { InputError } from '../../src/core/errors.js';
import { setAirflowVersion } from '../../src/inventory/edit.js';
import { parseInventory } from '../../src/inventory/load.js';
import { fileTree } from '../../src/tasks/release.js';
import { describeSteps, upgradePlaybook } from '../../playbooks/upgrade.js';
import { ROOT } from '../helpers/lab.js';

const refuses = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof InputError && re.test(e.message));

test('version jumps: same, within a major, 2.x to 3.x; a downgrade, a skipped major and 2.x before 2.7 to 3.x are refused', () => {
  assert.equal(compareVersions('2.10.1', '2.9.3') > 0, true);
  assert.equal(compareVersions('3.0.0', '3.0.0'), 0);
  assert.deepEqual(checkUpgradePath('3.4.0', '3.4.0'), { from: '3.4.0', to: '3.4.0', kind: 'none', notes: [] });
  assert.equal(checkUpgradePath('2.9.0', '2.11.0').kind, 'minor');
  assert.equal(checkUpgradePath('3.0.2', '3.4.0').kind, 'minor');
  const major = checkUpgradePath('2.11.0', '3.4.0');
  assert.equal(major.kind, 'major');
  assert.equal(major.notes.length, 1, 'from the newest 2.x: only the layout note');
  assert.match(checkUpgradePath('2.9.0', '3.4.0').notes[1]!, /--rollback` will refuse/);
  refuses(() => checkUpgradePath('3.4.0', '3.2.0'), /older than the running Airflow 3\.4\.0; a downgrade is not an upgrade/);
  refuses(() => checkUpgradePath('3.4.0', '2.11.0'), /downgrade/);
  refuses(() => checkUpgradePath('2.11.0', '4.0.0'), /over a major version/);
  refuses(() => checkUpgradePath('2.6.3', '3.0.0'), /needs Airflow 2\.7 or later first/);
  refuses(() => checkUpgradePath('2.11.0', '3.4'), /--to: "3\.4" is not a full Airflow version/);
});

test('rollback: within a major, or from 3.x to 2.11 only', () => {
  assert.deepEqual(checkRollbackPath('3.4.0', '2.11.0'), { from: '3.4.0', to: '2.11.0', kind: 'major', notes: [] });
  assert.equal(checkRollbackPath('3.4.0', '3.2.1').kind, 'minor');
  refuses(() => checkRollbackPath('3.4.0', '2.9.0'), /can downgrade its database to 2\.11 only, not to 2\.9\.0/);
  refuses(() => checkRollbackPath('3.4.0', '3.4.0'), /not older/);
});

test('DAG scan: removed imports, SubDagOperator and context keys by file and line; moved operators as moved; comments ignored', () => {
  const src = [
    'from airflow import DAG',
    'from airflow.contrib.hooks.aws_hook import AwsHook  # old',
    'from airflow.operators import subdag, bash',
    'from airflow.operators.python import PythonOperator',
    'import airflow.utils.dates',
    '# from airflow.contrib import x  -- a comment',
    't = BashOperator(task_id="t", bash_command="echo {{ execution_date }} {{ next_ds_nodash }}")',
    'def f(prev_ds, **context):',
    '    return context["logical_date"], SubDagOperator',
    'use_task_execution_date = True',
  ].join('\n');
  const found = scanDagFile('dags/a.py', src).map((f) => [f.line, f.severity, f.what]);
  assert.deepEqual(found, [
    [2, 'removed', 'import airflow.contrib.hooks.aws_hook (AwsHook)'],
    [3, 'removed', 'import airflow.operators (subdag, bash)'],
    [4, 'moved', 'import airflow.operators.python (PythonOperator)'],
    [5, 'removed', 'import airflow.utils.dates'],
    [7, 'removed', 'context key execution_date'],
    [7, 'removed', 'context key next_ds_nodash'],
    [8, 'removed', 'context key prev_ds'],
    [9, 'removed', 'SubDagOperator'],
  ]);
  // A 3.x DAG has nothing to report.
  assert.deepEqual(scanDagFile('b.py', 'from airflow.sdk import DAG\nfrom airflow.providers.standard.operators.bash import BashOperator\nx = "{{ logical_date }}"\n'), []);
  // The tree: only *.py, sorted; the report names file:line.
  const tree = fileTree([
    { path: 'z.py', content: Buffer.from('from airflow.contrib.operators import x\n'), executable: false },
    { path: 'README.md', content: Buffer.from('execution_date\n'), executable: false },
    { path: 'a/b.py', content: Buffer.from('\n\nprint("{{ yesterday_ds }}")\n'), executable: false },
  ]);
  const lines = formatFindings(scanDags(tree));
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^a\/b\.py:3: removed in 3\.0: context key yesterday_ds: /);
  assert.match(lines[1]!, /^z\.py:1: removed in 3\.0: import airflow\.contrib\.operators \(x\): .*apache\/airflow#41366/);
});

test('inventory edit: the version is replaced in place, comments and other bytes kept; no change when it is already there; an unsupported version is refused', async () => {
  const file = path.join(ROOT, 'inventory', 'seed-ha.yaml');
  const text = await readFile(file, 'utf8');
  const from = parseInventory(text, file).inventory.cluster.versions.airflow;
  const edit = setAirflowVersion(text, file, '3.4.0');
  assert.equal(edit.changed, true);
  assert.equal(edit.loaded.inventory.cluster.versions.airflow, '3.4.0');
  const diff = text.split('\n').map((l, i) => [l, edit.text.split('\n')[i]]).filter(([a, b]) => a !== b);
  assert.equal(diff.length, 1, 'one line changes');
  assert.equal(diff[0]![1], diff[0]![0]!.replace(from, '3.4.0'));
  assert.equal(setAirflowVersion(edit.text, file, '3.4.0').changed, false);
  assert.throws(() => setAirflowVersion(text, file, '3.99.0'), (e: unknown) => e instanceof InputError && /airflow:version/.test(JSON.stringify((e as InputError).diagnostics)) );
  // Without the key: added at the end of cluster.versions, in its indentation.
  const bare = 'cluster:\n  name: c\n  network: 10.0.0.0/24\n  versions:\n    postgresql: "15"  # kept\nhosts:\n  - { name: e1, address: 10.0.0.11, roles: [etcd] }\n';
  const added = setAirflowVersion(bare, 'bare.yaml', '3.4.0');
  assert.match(added.text, /    postgresql: "15"  # kept\n    airflow: 3\.4\.0\nhosts:/);
});

test('upgrade playbook of the seed, 2.11 -> 3.4: install, HAProxy by TCP, pause, drain, one migration, UI servers one at a time, workers by pool, HAProxy on the 3.x path; rollback downgrades first', async () => {
  const file = path.join(ROOT, 'inventory', 'seed-ha.yaml');
  const text = await readFile(file, 'utf8');
  const from = setAirflowVersion(text, file, '2.11.0').loaded.inventory;
  const to = setAirflowVersion(text, file, '3.4.0').loaded.inventory;
  const steps = describeSteps(upgradePlaybook(from, to, 'upgrade', 600), to).map((l) => l.replace(/ \[.*\]$/, ''));
  const webs = to.hosts.filter((h) => h.roles.includes('webserver')).map((h) => h.name);
  assert.ok(webs.length >= 2, 'the seed has two UI servers');
  assert.deepEqual(steps.slice(0, 5).map((s) => s.replace(/^\d+\. /, '')), [
    'install Airflow 3.4.0 beside 2.11.0',
    'haproxy: UI servers checked by TCP connect while they change majors',
    'stop the schedulers, triggerers and DAG processors (2.11.0)',
    'drain and stop the workers (2.11.0)',
    'airflow db migrate (3.4.0), once',
  ]);
  const ui = steps.filter((s) => /^\d+\. UI /.test(s)).map((s) => s.replace(/^\d+\. /, ''));
  assert.deepEqual(ui, webs.flatMap((w) => [`UI ${w}: out of HAProxy (maintenance)`, `UI ${w}: restart on 3.4.0`, `UI ${w}: back in HAProxy`]));
  const pools = [...new Set(to.hosts.filter((h) => h.roles.includes('worker')).map((h) => (h.queues ?? ['default']).join(',')))];
  assert.deepEqual(steps.filter((s) => / workers of /.test(s)).map((s) => s.replace(/^\d+\. /, '')), pools.map((q) => `workers of ${q}: start on 3.4.0`));
  assert.ok(steps.some((s) => s.endsWith('haproxy: UI servers checked on /api/v2/monitor/health')));
  // The migration targets one host: the first scheduler host.
  const pb = upgradePlaybook(from, to, 'upgrade', 600);
  assert.deepEqual(pb.steps.find((s) => s.name.startsWith('airflow db migrate'))!.hosts, { names: [to.hosts.find((h) => h.roles.includes('scheduler'))!.name] });
  // Rollback: no HAProxy TCP step is skipped (still a major change), the database step is a downgrade with 3.4.0.
  const back = describeSteps(upgradePlaybook(to, from, 'rollback', 600), from).map((l) => l.replace(/^\d+\. /, '').replace(/ \[.*\]$/, ''));
  assert.ok(back.includes('airflow db downgrade --to-version 2.11.0 (with 3.4.0), once'));
  assert.ok(back.includes('haproxy: UI servers checked on /health'));
  // Within a major: no TCP step.
  const minor = describeSteps(upgradePlaybook(to, setAirflowVersion(text, file, '3.4.1').loaded.inventory, 'upgrade', 600), to).join('\n');
  assert.doesNotMatch(minor, /TCP connect/);
});

/** Runs a task's guard facts and, when it has a change, its ops with sh on this machine; returns whether it changed. */
function runHere(task: Task): boolean {
  const outs = new Map<string, { stdout: string; code: number }>();
  for (const f of task.facts(HERE)) {
    const r = spawnSync('sh', ['-c', f.cmd.render()], { encoding: 'utf8' });
    outs.set(f.key, { stdout: r.stdout, code: r.status ?? -1 });
  }
  const plan = task.plan(new FactSet(outs), HERE);
  for (const op of plan.ops) {
    if (op.kind !== 'exec') continue;
    const r = spawnSync('sh', ['-c', op.cmd.render()], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${op.cmd.toString()}: ${r.stderr}`);
  }
  return plan.changed;
}
const HERE: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'here', container: true };

test('the venv link: a pre-versioned folder is replaced by the link, the switch is one rename and idempotent; prune keeps only the named versions', { skip: process.getuid?.() !== 0 && 'the switch checks that the link is root\'s' }, async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'ah-venv-'));
  const inv = { ...(await seedInventory()) };
  inv.cluster = { ...inv.cluster, airflow: { ...inv.cluster.airflow, home } };
  for (const v of ['2.9.0', '2.11.0', '3.4.0']) await mkdir(path.join(home, `venv-${v}`, 'bin'), { recursive: true });
  await mkdir(path.join(home, 'venv', 'bin'), { recursive: true });
  await writeFile(path.join(home, 'venv', 'bin', 'airflow'), 'legacy');
  assert.equal(runHere(venvSwitchTask(inv, '2.11.0')), true);
  assert.equal(await readlink(path.join(home, 'venv')), 'venv-2.11.0');
  assert.deepEqual((await readdir(home)).sort(), ['venv', 'venv-2.11.0', 'venv-2.9.0', 'venv-3.4.0'], 'the legacy folder is gone, no temp link left');
  assert.equal(runHere(venvSwitchTask(inv, '2.11.0')), false, 'a second switch changes nothing');
  assert.equal(runHere(venvSwitchTask(inv, '3.4.0')), true);
  assert.equal(await readlink(path.join(home, 'venv')), 'venv-3.4.0');
  assert.equal(runHere(venvPruneTask(inv, ['2.11.0', '3.4.0'])), true);
  assert.deepEqual((await readdir(home)).sort(), ['venv', 'venv-2.11.0', 'venv-3.4.0']);
  assert.equal(runHere(venvPruneTask(inv, ['2.11.0', '3.4.0'])), false);
  await rm(home, { recursive: true, force: true });
});
