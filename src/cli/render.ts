import type { OsFamily } from '../facts/host.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import type { Inventory } from '../inventory/schema.js';
import { selectHosts, type OperatorInputs, type Playbook } from '../run/playbook.js';

/** One file as a host would get it. */
export interface RenderedFile {
  host: string;
  path: string;
  content: Buffer;
  mode: string;
  /** The steps that state this file, in playbook order (more than one: a step restates a file an earlier step on the host also needs, with the same content). */
  steps: string[];
}

/**
 * Every file each host would get from `playbook`, computed offline (no host contacted): the OS
 * family is assumed, not read. One entry per host and path, in the order first stated. Pure.
 * @throws Error when two steps state different content or modes for one path of a host (they would
 * rewrite it on every run).
 */
export function renderFiles(playbook: Playbook, inv: Inventory, secrets: ClusterSecrets, family: OsFamily, operator?: OperatorInputs): RenderedFile[] {
  const out = new Map<string, RenderedFile>();
  for (const step of playbook.steps) {
    for (const host of selectHosts(inv, step.hosts)) {
      const facts = { osId: family === 'debian' ? 'debian' : 'rocky', osVersion: family === 'debian' ? '12' : '9', family, hostname: host.name, container: false };
      for (const task of step.tasks({ inventory: inv, secrets, host, facts, ...(operator ? { operator } : {}) })) {
        for (const f of task.files?.(facts) ?? []) {
          const key = `${host.name}\0${f.path}`;
          const seen = out.get(key);
          if (!seen) out.set(key, { host: host.name, path: f.path, content: f.content, mode: f.mode, steps: [step.name] });
          else if (seen.content.equals(f.content) && seen.mode === f.mode) seen.steps.push(step.name);
          else throw new Error(`${host.name}:${f.path} is stated differently by steps "${seen.steps.join('", "')}" and "${step.name}"`);
        }
      }
    }
  }
  return [...out.values()];
}
