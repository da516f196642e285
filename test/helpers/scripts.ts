/**
 * First-run scripts: for each host of a playbook, the commands a first run would execute on a
 * fresh host (every fact reading "absent"), as one shell script per host. Shared by the golden
 * script tests, which pin them and pass each through shellcheck.
 */
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { describeOp, type Op } from '../../src/core/op.js';
import { FactSet, type Fact } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import type { ClusterSecrets } from '../../src/inventory/secrets.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { selectHosts, type OperatorInputs, type Playbook } from '../../src/run/playbook.js';
import type { Handler } from '../../src/tasks/task.js';

/** Facts of a fresh host: every fact command printed nothing and failed. */
export class FreshHost extends FactSet {
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

/** host name -> the script of its first run of `playbook`, steps and handlers in order; `fresh` gives the facts every task reads. */
export function firstRunScripts(
  playbook: Playbook,
  inv: Inventory,
  facts: HostFacts,
  secrets: ClusterSecrets,
  title: string,
  operator?: OperatorInputs,
  fresh: () => FactSet = () => new FreshHost(),
): Map<string, string> {
  const out = new Map<string, string[]>();
  for (const step of playbook.steps) {
    for (const host of selectHosts(inv, step.hosts)) {
      const lines = out.get(host.name) ?? ['#!/bin/sh', `# ${title}: ${host.name} (fixed test secrets)`, 'set -e'];
      const notified = new Map<string, Handler>();
      const tasks = step.tasks({ inventory: inv, secrets, host, facts, ...(operator ? { operator } : {}) });
      if (tasks.length) lines.push('', `# == step: ${step.name}`);
      for (const task of tasks) {
        const plan = task.plan(fresh(), facts);
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

/** Fails with shellcheck's findings unless `text` passes (`-s sh`; SC2016 excluded: scripts handed to `bash -c` are single-quoted on purpose). */
export function assertShellcheck(name: string, text: string, shell = 'sh'): void {
  try {
    execFileSync('shellcheck', ['-s', shell, '-e', 'SC2016', '-'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    assert.fail(`shellcheck on ${name}:\n${String((e as { stdout?: Buffer }).stdout ?? e)}`);
  }
}
