import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inventoryJsonSchema } from '../../src/inventory/schema.js';
import { ROOT } from '../helpers/lab.js';

test('inventory/inventory.schema.json is the schema generated from the zod types (run `airflow-ha schema` to refresh)', async () => {
  const committed = JSON.parse(await readFile(path.join(ROOT, 'inventory', 'inventory.schema.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(committed, JSON.parse(JSON.stringify(inventoryJsonSchema())));
  const props = (committed['properties'] ?? {}) as Record<string, unknown>;
  assert.deepEqual(Object.keys(props).sort(), ['cluster', 'hosts', 'lab', 'secrets', 'secretsFile', 'ssh']);
  assert.deepEqual(committed['required'], ['cluster', 'hosts']);
});
