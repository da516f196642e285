import path from 'node:path';
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
      let tasks;
      try {
        tasks = step.tasks({ inventory: inv, secrets, host, facts, ...(operator ? { operator } : {}) });
      } catch (e) {
        // A template's refusal names the template and the variable; this adds where it happened.
        throw new Error(`host ${host.name}, step ${step.name}: ${(e as Error).message}`, { cause: e });
      }
      for (const task of tasks) {
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

/**
 * Where `render --out DIR` writes `file` of `host`: `DIR/<host>/<path>`. Pure.
 * @throws Error when the host name or the path has a `..` segment (or the path is not absolute),
 * or the result resolves outside `outDir`: nothing is written outside the folder the operator named.
 */
export function renderTarget(outDir: string, host: string, file: string): string {
  const root = path.resolve(outDir);
  const dotdot = (p: string) => p.split('/').includes('..');
  if (!path.posix.isAbsolute(file) || dotdot(file) || dotdot(host) || host.includes('/')) {
    throw new Error(`render: refusing to write ${host}:${file}: a host's file must have an absolute path with no .. segment`);
  }
  const target = path.join(root, host, file);
  const rel = path.relative(root, target);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`render: refusing to write ${target}: it is outside ${root}`);
  return target;
}
