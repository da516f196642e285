/**
 * Shared by the golden-file tests: the seed inventory, fixed secrets (so rendered files are
 * stable), and the golden comparison itself (UPDATE_GOLDEN=1 rewrites the files).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import assert from 'node:assert/strict';
import { Secret } from '../../src/core/secret.js';
import { parseInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/schema.js';
import type { ClusterSecrets } from '../../src/inventory/secrets.js';
import { ROOT } from './lab.js';

export const GOLDEN_DIR = path.join(ROOT, 'test', 'golden');

/** Every secret as `fixed-<name>-value`: deterministic, and recognisable in golden files. */
export const fixedSecrets: ClusterSecrets = new Proxy({} as ClusterSecrets, {
  get: (_t, key) => new Secret(`fixed-${String(key)}-value`),
});

/** inventory/seed-ha.yaml, parsed (offline). */
export async function seedInventory(): Promise<Inventory> {
  const file = path.join(ROOT, 'inventory', 'seed-ha.yaml');
  return parseInventory(await readFile(file, 'utf8'), file).inventory;
}

/** Asserts `actual` equals test/golden/NAME; with UPDATE_GOLDEN=1 writes it first. */
export async function assertGolden(name: string, actual: string | Buffer): Promise<void> {
  const file = path.join(GOLDEN_DIR, name);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, actual);
  }
  assert.equal(actual.toString(), await readFile(file, 'utf8'), `golden ${name} (UPDATE_GOLDEN=1 rewrites it)`);
}
