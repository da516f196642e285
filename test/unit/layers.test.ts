/**
 * The layering of ../STYLE.md, checked on the source: who may import whom, and no import cycles.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT } from '../helpers/lab.js';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = [...tsFiles(path.join(ROOT, 'src')), ...tsFiles(path.join(ROOT, 'playbooks'))];

/** Import specifiers of a file: relative ones resolved to repository paths (`src/run/facts.ts`), packages as named. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)) {
    const spec = m[1] as string;
    if (spec.startsWith('.')) out.push(path.relative(ROOT, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts'));
    else out.push(spec.replace(/^node:/, 'node:'));
  }
  return out;
}

const layer = (rel: string) => rel.split('/').slice(0, 2).join('/');
const graph = new Map(files.map((f) => [path.relative(ROOT, f), imports(f)]));

/** [importer layer, forbidden import prefix, why]. */
const RULES: Array<[string, string, string]> = [
  ['src/core', 'src/', 'core imports nothing of ours'],
  ['src/tasks', 'src/ssh', 'tasks return ops; only run/ talks to a transport'],
  ['src/tasks', 'src/run', 'tasks do not know the runner'],
  ['src/facts', 'src/ssh', 'facts are commands + parsers'],
  ['src/components', 'src/ssh', 'components describe desired state'],
  ['src/components', 'src/run/execute', 'components describe desired state'],
  ['playbooks', 'src/ssh', 'playbooks are data'],
  ['src/inventory', 'src/ssh', 'the inventory is offline'],
  ['src/run', 'src/ssh/pool', 'only cli/ builds the real ssh transport'],
  ['src/run', 'src/cli', 'the runner does not know the CLI'],
  ['src/status', 'src/ssh', 'status checks are commands + parsers; only run/ talks to a transport'],
  ['src/status', 'src/run', 'status checks do not know the runner'],
  ['src/status', 'src/cli', 'status checks do not know the CLI'],
];
const PACKAGES: Array<[string, RegExp, string]> = [
  ['src/tasks', /^(ssh2|listr2|chalk|execa|commander)$/, 'no I/O libraries in tasks'],
  ['src/facts', /^(ssh2|listr2|chalk|execa|commander)$/, 'no I/O libraries in facts'],
  ['src/components', /^(ssh2|listr2|chalk|execa|commander)$/, 'no I/O libraries in components'],
  ['src/run', /^(ssh2|listr2|chalk|commander)$/, 'the runner reports through events'],
  ['src/core', /^(ssh2|listr2|chalk|execa|commander)$/, 'core is pure'],
  ['src/status', /^(ssh2|listr2|chalk|execa|commander)$/, 'status checks, parsers and rendering are pure (colour comes in as functions)'],
];

test('imports follow the layering', () => {
  const broken: string[] = [];
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      for (const [from, to, why] of RULES) {
        if (file.startsWith(`${from}/`) && dep.startsWith(to) && !dep.startsWith(`${from}/`)) broken.push(`${file} imports ${dep}: ${why}`);
      }
      for (const [from, re, why] of PACKAGES) {
        if (file.startsWith(`${from}/`) && re.test(dep)) broken.push(`${file} imports ${dep}: ${why}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

test('process.argv, process.exit and process.env are used only in src/cli and src/lab', () => {
  const offenders = files
    .map((f) => path.relative(ROOT, f))
    .filter((f) => !f.startsWith('src/cli/') && !f.startsWith('src/lab/'))
    .filter((f) => /process\.(argv|exit|env)\b/.test(readFileSync(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(offenders, []);
});

test('no import cycles between modules', () => {
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, stack: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') {
      cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'visiting');
    for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...stack, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
  assert.ok(graph.size > 20, 'the check saw the source tree');
  assert.ok([...graph.keys()].some((f) => layer(f) === 'src/run'));
});
