/**
 * add-worker / remove-worker edit the operator's inventory file: only the lines of the host entry
 * change; comments, order and layout of everything else are kept byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { InputError } from '../../src/core/errors.js';
import { addHostToInventory, removeHostFromInventory } from '../../src/inventory/edit.js';
import { parseInventory } from '../../src/inventory/load.js';
import { ROOT } from '../helpers/lab.js';

const SEED = path.join(ROOT, 'inventory', 'seed-ha.yaml');
const worker2 = { name: 'worker2', address: '192.168.83.160', roles: ['worker' as const], queues: ['card', 'default'] };

test('add-worker appends one line in the style of a flow-map inventory; removing it gives back the same bytes', async () => {
  const text = await readFile(SEED, 'utf8');
  const added = addHostToInventory(text, SEED, worker2);
  assert.equal(added.changed, true);
  const before = text.split('\n');
  const after = added.text.split('\n');
  assert.equal(after.length, before.length + 1);
  const i = after.findIndex((l) => l.includes('worker2'));
  assert.equal(after[i], '  - { name: worker2, address: 192.168.83.160, roles: [worker], queues: [card, default] }');
  assert.deepEqual([...after.slice(0, i), ...after.slice(i + 1)], before, 'every other line is unchanged');
  const host = parseInventory(added.text, SEED).inventory.hosts.find((h) => h.name === 'worker2');
  assert.deepEqual(host, { name: 'worker2', address: '192.168.83.160', roles: ['worker'], queues: ['card', 'default'] });
  // Re-running add-worker changes nothing; removing the host restores the file exactly.
  const again = addHostToInventory(added.text, SEED, worker2);
  assert.deepEqual({ text: again.text, changed: again.changed }, { text: added.text, changed: false });
  // Each edit hands back its text parsed: the CLI runs on it without reading the file again.
  assert.deepEqual(again.loaded.inventory, added.loaded.inventory);
  assert.equal(added.loaded.inventory.hosts.at(-1)?.name, 'worker2');
  assert.equal(removeHostFromInventory(added.text, SEED, 'worker2').text, text);
});

test('remove-worker cuts the entry and the comment above it, and nothing else', async () => {
  const text = await readFile(SEED, 'utf8');
  const r = removeHostFromInventory(text, SEED, 'worker1');
  assert.equal(r.changed, true);
  const gone = text.split('\n').filter((l) => !r.text.split('\n').includes(l));
  assert.deepEqual(gone, ['  # VM4: Celery worker', '  - name: worker1', '    address: 192.168.83.131', '    roles: [worker]', '    queues: [default]']);
  assert.equal(r.text.split('\n').length, text.split('\n').length - 5);
  assert.match(r.text, /# VM3: the card-processing target system/);
  assert.equal(parseInventory(r.text, SEED).inventory.hosts.some((h) => h.name === 'worker1'), false);
  const again = removeHostFromInventory(r.text, SEED, 'worker1');
  assert.deepEqual({ text: again.text, changed: again.changed }, { text: r.text, changed: false });
  assert.deepEqual(again.loaded.inventory, r.loaded.inventory);
});

test('a block-style inventory gets a block entry at the same indentation', () => {
  const inv = {
    cluster: { name: 'blk', network: '10.9.0.0/24' },
    hosts: [
      { name: 'db1', address: '10.9.0.11', roles: ['postgresql', 'etcd'] },
      { name: 'w1', address: '10.9.0.21', roles: ['worker'], queues: ['default'] },
    ],
  };
  const text = `# block style\n${stringify(inv)}# trailing comment\n`;
  const added = addHostToInventory(text, 'blk.yaml', { name: 'w2', address: '10.9.0.22', roles: ['worker'], queues: ['etl'] });
  assert.match(added.text, /\n {2}- name: w2\n {4}address: 10\.9\.0\.22\n {4}roles: \[worker\]\n {4}queues: \[etl\]\n# trailing comment\n$/);
  assert.deepEqual(parseInventory(added.text, 'blk.yaml').inventory.hosts.map((h) => h.name), ['db1', 'w1', 'w2']);
  assert.equal(removeHostFromInventory(added.text, 'blk.yaml', 'w2').text, text);
});

test('a name taken by another host, or a host that breaks a rule, is refused with the rule and position', async () => {
  const text = await readFile(SEED, 'utf8');
  assert.throws(() => addHostToInventory(text, SEED, { ...worker2, name: 'worker1' }), (e: unknown) => e instanceof InputError && /worker1 is already in the inventory with other settings \(address 192\.168\.83\.131/.test(e.message));
  // The new entry would be the line after the file's last host line.
  const newLine = text.trimEnd().split('\n').length + 1;
  const ruleAt = (rule: string) => (e: unknown) =>
    e instanceof InputError && e.diagnostics.some((d) => d.rule === rule && d.severity === 'error' && d.pos.line === newLine);
  assert.throws(() => addHostToInventory(text, SEED, { ...worker2, address: '10.1.2.3' }), ruleAt('net:outside-network'));
  assert.throws(() => addHostToInventory(text, SEED, { ...worker2, address: '192.168.83.131' }), ruleAt('host:unique-address'));
});
