/**
 * Rocky/RHEL hosts cannot be booted here, so their part of `bootstrap` is covered offline: for each
 * seed host, the commands a first run would execute on a fresh Rocky 9 host (every fact reading
 * "absent"), as one shell script per host. Every guard reads as failed too, so commands a first run
 * skips (e.g. a pending rolling restart) are also pinned. Golden files pin them; every script must
 * pass shellcheck.
 */
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeOp, type Op } from '../../src/core/op.js';
import { FactSet, type Fact } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { selectHosts } from '../../src/run/playbook.js';
import type { Handler } from '../../src/tasks/task.js';
import { bootstrap } from '../../playbooks/bootstrap.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';

/** Facts of a fresh host: every fact command printed nothing and failed. */
class FreshHost extends FactSet {
  constructor() {
    super(new Map());
  }
  override get<T>(fact: Fact<T>): T {
    return fact.parse('', 1);
  }
}

/**
 * One op as a script line: each command in a subshell, as each runs in its own `sh -c` on the host,
 * rendered exactly as sent (the secrets here are the fixed test values, not real ones).
 */
function line(op: Op): string {
  return op.kind === 'exec' ? `( ${op.cmd.render()} )` : `# ${describeOp(op)}`;
}

const rocky: HostFacts = { osId: 'rocky', osVersion: '9.4', family: 'rhel', hostname: 'fresh', container: false };

async function scripts(): Promise<Map<string, string>> {
  const inv = await seedInventory();
  // The VRRP interface is read from the host at run time; offline it is named.
  for (const h of inv.hosts) h.vars = { ...h.vars, interface: 'eth0' };
  const out = new Map<string, string[]>();
  for (const step of bootstrap.steps) {
    for (const host of selectHosts(inv, step.hosts)) {
      const lines = out.get(host.name) ?? ['#!/bin/sh', `# airflow-ha bootstrap on a fresh Rocky/RHEL 9 host: ${host.name} (fixed test secrets)`, 'set -e'];
      const notified = new Map<string, Handler>();
      const tasks = step.tasks({ inventory: inv, secrets: fixedSecrets, host, facts: rocky });
      if (tasks.length) lines.push('', `# == step: ${step.name}`);
      for (const task of tasks) {
        const plan = task.plan(new FreshHost(), rocky);
        if (plan.ops.length === 0) continue;
        lines.push(`# task: ${task.name}`);
        for (const op of plan.ops) lines.push(line(op));
        for (const h of plan.notify) notified.set(h.id, h);
      }
      for (const h of notified.values()) {
        lines.push(`# handler: ${h.name}`, ...h.ops.map(line));
      }
      out.set(host.name, lines);
    }
  }
  return new Map([...out].map(([h, l]) => [h, `${l.join('\n')}\n`]));
}

test('golden: the first-run commands of every seed host on Rocky/RHEL 9', async () => {
  const all = await scripts();
  assert.equal(all.size, 13);
  for (const [host, text] of all) await assertGolden(`rhel-scripts/${host}.sh`, text);
  // What a Rocky host gets that a Debian one does not: dnf, and packages held by versionlock when pinned.
  assert.match(all.get('sql1') ?? '', /^\( dnf install -y -q /m);
  assert.doesNotMatch(all.get('sql1') ?? '', /apt-get/);
});

test('every generated Rocky/RHEL script passes shellcheck', async () => {
  for (const [host, text] of await scripts()) {
    try {
      // SC2016 excluded: scripts handed to `bash -c` are single-quoted on purpose, `$` and all.
      execFileSync('shellcheck', ['-s', 'sh', '-e', 'SC2016', '-'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      assert.fail(`shellcheck on ${host}:\n${String((e as { stdout?: Buffer }).stdout ?? e)}`);
    }
  }
});
