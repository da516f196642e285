/**
 * The operator's conventions of the command line, run through main() in-process.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runMain } from '../helpers/cli.js';
import { ROOT } from '../helpers/lab.js';

test('--version prints the version in package.json', async () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await runMain(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${pkg.version}\n`);
});
