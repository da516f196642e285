/**
 * What every start of the CLI loads (`--help`, `validate`): src/cli/main.ts and its static imports,
 * followed transitively. Heavy packages (zod, yaml, ssh2, nunjucks, chalk, listr2, execa) and the
 * playbooks must be loaded by the commands that use them (dynamic import() in their actions), not
 * here; bench/startup.sh measures the time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT } from '../helpers/lab.js';

/** Static value imports of a source file (not `import type`, not `import()`), relative ones as repository paths. */
function staticImports(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+'([^']+)'/gm)) {
    const spec = m[1] as string;
    out.push(spec.startsWith('.') ? path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), spec)).replace(/\.js$/, '.ts') : spec);
  }
  return out;
}

/** Every module `entry` loads before any action runs. */
function loadedAtStart(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    if (f.endsWith('.ts')) for (const d of staticImports(f)) visit(d);
  };
  visit(entry);
  return seen;
}

test('a start of the CLI loads commander and a few small modules of ours, nothing heavy', () => {
  const loaded = [...loadedAtStart('src/cli/main.ts')].sort();
  assert.deepEqual(
    loaded.filter((m) => !m.startsWith('node:')),
    ['commander', 'playbooks/catalog.ts', 'src/cli/certs.ts', 'src/cli/main.ts', 'src/cli/options.ts', 'src/cli/rotate.ts', 'src/cli/ssh.ts', 'src/cli/upgrade.ts', 'src/cli/workers.ts', 'src/core/errors.ts'],
  );
});

test('validate loads the inventory loader and not the playbooks, the transport or the renderers', () => {
  const loaded = loadedAtStart('src/inventory/load.ts');
  const heavy = [...loaded].filter((m) => /^(ssh2|nunjucks|chalk|listr2|execa)$/.test(m) || m.startsWith('playbooks/') || m.startsWith('src/ssh/') || m.startsWith('src/tasks/'));
  assert.deepEqual(heavy, []);
  assert.ok(loaded.has('zod') && loaded.has('yaml'), 'the check itself: zod and yaml are found');
});
