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
}

/**
 * Every file each host would get from `playbook`, computed offline (no host contacted): the OS
 * family is assumed, not read. Pure.
 */
export function renderFiles(playbook: Playbook, inv: Inventory, secrets: ClusterSecrets, family: OsFamily, operator?: OperatorInputs): RenderedFile[] {
  const out: RenderedFile[] = [];
  for (const step of playbook.steps) {
    for (const host of selectHosts(inv, step.hosts)) {
      const facts = { osId: family === 'debian' ? 'debian' : 'rocky', osVersion: family === 'debian' ? '12' : '9', family, hostname: host.name, container: false };
      for (const task of step.tasks({ inventory: inv, secrets, host, facts, ...(operator ? { operator } : {}) })) {
        for (const f of task.files?.(facts) ?? []) out.push({ host: host.name, path: f.path, content: f.content, mode: f.mode });
      }
    }
  }
  return out;
}
